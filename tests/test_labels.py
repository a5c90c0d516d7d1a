import numpy as np
import pytest

from nucleiseg.labels import label_dtype, masks_to_labels


def test_each_mask_gets_its_own_label():
    a = np.zeros((6, 6), bool)
    a[0:2, 0:2] = True
    b = np.zeros((6, 6), bool)
    b[3:6, 3:6] = True
    labels, overlap = masks_to_labels([a, b])
    assert labels.dtype == np.uint16
    assert overlap == 0
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels == 1).sum() == 4 and (labels == 2).sum() == 9


def test_overlap_goes_to_the_earlier_mask_whatever_its_size():
    big = np.zeros((5, 5), bool)
    big[0:4, 0:4] = True
    small = np.zeros((5, 5), bool)
    small[3:5, 3:5] = True  # shares pixel (3, 3) with big
    labels, overlap = masks_to_labels([big, small])
    assert overlap == 1
    assert labels[3, 3] == 1
    labels_swapped, _ = masks_to_labels([small, big])
    assert labels_swapped[3, 3] == 1  # now `small` is first and keeps it
    assert (labels_swapped == 1).sum() == 4 and (labels_swapped == 2).sum() == 15


def test_mask_shapes_must_agree():
    with pytest.raises(ValueError, match="shape"):
        masks_to_labels([np.zeros((4, 4)), np.zeros((4, 5))])


def test_dtype_grows_past_uint16():
    assert label_dtype(65535) == np.uint16
    assert label_dtype(65536) == np.uint32
