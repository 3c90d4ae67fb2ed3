"""check_image.py FILE.png|FILE.svg MIN_W MIN_H: checks a figure that probe plot
drew: a PNG that PIL opens, at least MIN_W x MIN_H pixels, not blank (several
colours, a real share of non-background pixels); or an SVG that parses as
XML, with width/height at least MIN_W x MIN_H and a non-trivial number of
drawing elements.  Prints "check_image: OK ..." or explains and exits 1."""
import sys
import xml.etree.ElementTree as ET


def fail(msg):
    print("check_image: FAIL " + msg)
    sys.exit(1)


def check_png(path, mw, mh):
    from PIL import Image

    im = Image.open(path)
    im.load()
    w, h = im.size
    if w < mw or h < mh:
        fail(f"{path}: {w}x{h}, expected at least {mw}x{mh}")
    rgb = im.convert("RGB")
    colors = rgb.getcolors(maxcolors=1 << 20) or []
    if len(colors) < 8:
        fail(f"{path}: only {len(colors)} colours: blank")
    bg = max(colors)[1]
    share = 1 - max(colors)[0] / (w * h)
    if share < 0.02:
        fail(f"{path}: {share:.3%} of the pixels differ from the background {bg}: blank")
    # Data, not just axes and text: coloured (not grey) pixels.
    colored = sum(n for n, (r, g, b) in colors if max(r, g, b) - min(r, g, b) > 40) / (w * h)
    if colored < 0.005:
        fail(f"{path}: {colored:.3%} coloured pixels: axes without data")
    print(f"check_image: OK {path}: PNG {w}x{h}, {len(colors)} colours, {share:.1%} drawn, "
          f"{colored:.1%} coloured")


def is_colored(e):
    """True if the element is filled or stroked with a colour that is not grey."""
    import re

    text = " ".join(str(e.get(k, "")) for k in ("fill", "stroke", "style", "color"))
    for m in re.finditer(r"rgb\(\s*(\d+),\s*(\d+),\s*(\d+)\s*\)|#([0-9a-fA-F]{6})\b", text):
        if m.group(4):
            v = [int(m.group(4)[i : i + 2], 16) for i in (0, 2, 4)]
        else:
            v = [int(m.group(i)) for i in (1, 2, 3)]
        if max(v) - min(v) > 40:
            return True
    return False


def check_svg(path, mw, mh):
    root = ET.parse(path).getroot()
    if not root.tag.endswith("svg"):
        fail(f"{path}: root element {root.tag}, expected svg")
    w = float(str(root.get("width", "0")).rstrip("px") or 0)
    h = float(str(root.get("height", "0")).rstrip("px") or 0)
    if w < mw or h < mh:
        fail(f"{path}: {w}x{h}, expected at least {mw}x{mh}")
    kinds = ("path", "rect", "polyline", "polygon", "line", "circle", "image", "use")
    n = sum(1 for e in root.iter() if e.tag.split("}")[-1] in kinds)
    texts = sum(1 for e in root.iter() if e.tag.split("}")[-1] == "text")
    if n < 20 or texts < 5:
        fail(f"{path}: {n} drawing elements and {texts} texts: blank")
    colored = sum(1 for e in root.iter() if e.tag.split("}")[-1] == "image" or is_colored(e))
    if colored < 3:
        fail(f"{path}: {colored} coloured elements: axes without data")
    print(f"check_image: OK {path}: {colored} coloured elements, SVG {w:g}x{h:g}, {n} drawing elements, {texts} texts")


path, mw, mh = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
(check_svg if path.endswith(".svg") else check_png)(path, mw, mh)
