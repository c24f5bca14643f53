"""Evaluate a model on all 18 real images: F1@0.5 per material + timing at 1024x1024."""
import sys, time, json, numpy as np, resource
from collections import defaultdict
from microcrystalnet.metrics import match_instances
from realdata import real_images
from unet_probe import normalize, TARGET_DIAMETER_PX
from skimage.transform import rescale, resize
kind, path = sys.argv[1], sys.argv[2]
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
if kind == "unet":
    import torch; torch.set_num_threads(int(extra.pop("threads", 1)))
    from unet_probe import load, segment
    model = load(path)
    seg = lambda img, d: segment(model, img, d, **extra)
else:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(1)
    from stardist.models import StarDist2D
    model = StarDist2D(None, name=extra.pop("name", "sd"), basedir=path)
    def seg(img, d):
        f = TARGET_DIAMETER_PX / d
        small = rescale(normalize(img.astype(np.float32)), f, order=1, anti_aliasing=f < 1, preserve_range=True)
        lab = model.predict_instances(small.astype(np.float32), show_tile_progress=False)[0]
        return resize(lab, img.shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
scores = defaultdict(list)
for mat, d, img, lab in real_images():
    pred = seg(img, d)
    if mat == "tio2" and lab.max() > 200: timing_img = img
    r = match_instances(lab, pred)
    scores[mat].append(r.f1); print(mat, d, img.shape, f"F1 {r.f1:.3f}", int(pred.max()), "pred vs", int(len(np.unique(lab)) - 1), "true", flush=True)
out = {m: round(float(np.mean(v)), 3) for m, v in scores.items()}
x = np.pad(timing_img, ((0, 1024 - timing_img.shape[0]), (0, 0)), mode="reflect")  # dense real tio2 image, 1024x1024
seg(x, TARGET_DIAMETER_PX)
ts = []
for _ in range(3):
    t = time.time(); seg(x, TARGET_DIAMETER_PX); ts.append(time.time() - t)
out["s_per_1024"] = round(min(ts), 2); out["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print("RESULT", kind, path, extra, json.dumps(out), flush=True)
