// Opens a label OME-TIFF as Fiji does (the Bio-Formats plugin, .ci/install-bioformats) and
// reports what it found; tests/test_fiji.py runs it in ImageJ 1.53t's batch mode.
// Argument: the OME-TIFF and an output folder, one per line. Prints, tab-separated:
//   version <ImageJ>; series <count>;
//   level <series> <width> <height> <pixel type>   (the Bio-Formats reader's view of each series)
//   opened <series> <width> <height> <bit depth> <pixel width> <unit>   (the Importer's image,
//     saved as <out>/series<k>.tif, a plain TIFF, for the test to compare pixel by pixel)
// and `done` last: ImageJ exits 0 even when a macro fails.
args = split(getArgument(), "\n");
path = args[0];
out = args[1];
print("version\t" + getVersion());
run("Bio-Formats Macro Extensions");
Ext.setId(path);
Ext.getSeriesCount(count);
print("series\t" + count);
for (s = 0; s < count; s++) {
    Ext.setSeries(s);
    Ext.getSizeX(width);
    Ext.getSizeY(height);
    Ext.getPixelType(type);
    print("level\t" + s + "\t" + width + "\t" + height + "\t" + type);
}
Ext.close();
for (s = 1; s <= count; s++) {
    run("Bio-Formats Importer", "open=[" + path + "] color_mode=Default view=Hyperstack "
        + "stack_order=XYCZT series_" + s);
    getPixelSize(unit, pixelWidth, pixelHeight);
    print("opened\t" + (s - 1) + "\t" + getWidth() + "\t" + getHeight() + "\t" + bitDepth()
          + "\t" + pixelWidth + "\t" + unit);
    saveAs("Tiff", out + "/series" + (s - 1) + ".tif");
    close();
}
print("done");
