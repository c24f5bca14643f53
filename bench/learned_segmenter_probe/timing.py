import sys, time, numpy as np, torch
from realdata import real_images
from unet_probe import load, segment
img = [i for m, d, i, l in real_images() if m == "tio2" and l.max() > 200][0]
x = np.pad(img, ((0, 1024 - img.shape[0]), (0, 0)), mode="reflect")
for path in sys.argv[1:]:
    model = load(path)
    for th in (1, 2):
        torch.set_num_threads(th); import unet_probe; unet_probe.torch.set_num_threads = lambda n: None
        segment(model, x, 28.0); ts = []
        for _ in range(3):
            t = time.time(); segment(model, x, 28.0); ts.append(time.time() - t)
        print(path, "threads", th, "s per 1024^2", round(min(ts), 2), flush=True)
