"""The training loss and metric: BCE + Dice per head, and the foreground's Dice."""

from __future__ import annotations


def bce_dice_loss(y_true, y_pred):
    """Sum over heads of binary cross-entropy + soft Dice loss (Dice over the whole step).

    Targets with one channel more than the heads (train.touch_weight) carry, in that channel,
    each pixel's extra weight in the contour head's cross-entropy: 1 + that value.
    """
    from keras import ops

    y_pred = ops.clip(ops.cast(y_pred, "float32"), 1e-6, 1 - 1e-6)
    y_true = ops.cast(y_true, "float32")
    heads = y_pred.shape[-1]
    weight = 1.0
    if y_true.shape[-1] > heads:  # foreground alike, contour weighed by the touch band
        extra = y_true[..., heads:heads + 1]
        weight = ops.concatenate([ops.ones_like(extra), 1 + extra], axis=-1)
        y_true = y_true[..., :heads]
    bce = -ops.mean(weight * (y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)),
                    axis=(0, 1, 2))
    overlap = ops.sum(y_true * y_pred, axis=(0, 1, 2))
    total = ops.sum(y_true, axis=(0, 1, 2)) + ops.sum(y_pred, axis=(0, 1, 2))
    dice = 1 - (2 * overlap + 1) / (total + 1)
    loss, replicas = ops.sum(bce + dice), _replicas_in_sync()
    return loss / replicas if replicas > 1 else loss


def _replicas_in_sync() -> int:
    """Replicas that train in step (1 outside a MirroredStrategy).

    The replicas' gradients are summed, so each replica's loss must be divided by their number
    for the step to follow the mean gradient. Keras does that for losses it reduces from
    per-sample values, but leaves a scalar loss such as bce_dice_loss as it is; Keras then
    multiplies the logged loss back by the number of replicas.
    """
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def foreground_dice(y_true, y_pred):
    """Dice of the thresholded foreground head: what a person would call the mask's overlap."""
    from keras import ops

    truth = ops.cast(y_true[..., 0] > 0.5, "float32")  # the foreground, whatever follows
    pred = ops.cast(y_pred[..., 0] > 0.5, "float32")
    return (2 * ops.sum(truth * pred) + 1) / (ops.sum(truth) + ops.sum(pred) + 1)
