// Opens an ImageJ ROI set in the ROI Manager, as the README's Fiji steps do, and reports what
// ImageJ makes of it; run by tests/test_imagej.py in batch mode, on a virtual display:
//
//   xvfb-run -a java -jar /usr/share/java/ij.jar -batch tests/imagej_rois.ijm ARGS
//
// ARGS is one argument, its fields separated by newlines: the ROI set (.zip), the label image's
// width and height, and the 16-bit TIFF to write. Prints, tab-separated, `version`, `count`, then
// per ROI in the ROI Manager's order `roi`, its index, name, type (Roi.getType) and area measured
// on a blank, uncalibrated image of the label image's size (so in pixels: the pixels ImageJ
// counts inside the ROI), and `done` at the end. Writes the ROIs filled as ImageJ fills them,
// each with the number of its name, into the TIFF. Needs a display (xvfb-run): the ROI Manager is
// a window. Per ROI, getStatistics rather than the ROI Manager's Measure: in batch mode from the
// command line (no ImageJ window) the Results table keeps only the last row, printing each.

args = split(getArgument(), "\n");
if (args.length != 4)
    exit("usage: -batch imagej_rois.ijm '<rois.zip>\\n<width>\\n<height>\\n<filled.tif>'");
rois = args[0];
width = parseInt(args[1]);
height = parseInt(args[2]);
filled = args[3];

setBatchMode(true);
print("version\t" + getVersion());
newImage("blank", "16-bit black", width, height, 1);
roiManager("reset");
roiManager("Open", rois);
count = roiManager("count");
print("count\t" + count);
for (i = 0; i < count; i++) {
    roiManager("select", i);
    getStatistics(area);
    print("roi\t" + i + "\t" + Roi.getName + "\t" + Roi.getType + "\t" + area);
    setColor(parseInt(Roi.getName));  // each ROI filled with its label: the nuclei ImageJ sees
    fill();
}
run("Select None");
saveAs("Tiff", filled);
print("done");
