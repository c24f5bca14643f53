import os, sys, numpy as np, time
from scipy import ndimage as ndi
from skimage.transform import rescale
from microcrystalnet.synth import random_training_scene
TARGET = 28.0; C = 128
start, n = int(sys.argv[1]), int(sys.argv[2])
imgs, labs = [], []
t = time.time()
for s in range(start, start + n):
    sc = random_training_scene(s, shape=(256, 256))
    lab = sc.labels
    ids, area = np.unique(lab[lab > 0], return_counts=True)
    if len(ids) < 2: continue
    d = np.median(2 * np.sqrt(area / np.pi))
    f = TARGET / d
    if f < 0.3 or f > 3.5: continue
    img = rescale(sc.image.astype(np.float32) / 255, f, order=1, anti_aliasing=f < 1, preserve_range=True)
    lb = rescale(lab, f, order=0, anti_aliasing=False, preserve_range=True).astype(np.int32)
    if img.shape[0] < C: continue
    if False:
        p = C - img.shape[0]; img = np.pad(img, ((0, p), (0, p)), mode="reflect"); lb = np.pad(lb, ((0, p), (0, p)))  # pad labels 0
    rng = np.random.default_rng(s)
    for _ in range(2 if img.shape[0] >= 2 * C else 1):
        y, x = rng.integers(0, img.shape[0] - C + 1, 2)
        imgs.append(img[y:y+C, x:x+C]); labs.append(lb[y:y+C, x:x+C])
np.savez_compressed(f"data_{start}.npz", img=np.array(imgs, np.float32), lab=np.array(labs, np.int32))
print(len(imgs), time.time() - t)
