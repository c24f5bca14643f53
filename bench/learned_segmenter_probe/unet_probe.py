"""Small 3-class U-Net (background / crystal interior / boundary) + seeded watershed.

Probe code for MicroCrystalNet issue 13 item 4. Trained only on microcrystalnet.synth scenes
rescaled so the median crystal diameter is TARGET_DIAMETER_PX; at inference the user's median
diameter (px) rescales the image the same way. One CPU thread throughout.
  data:    gen.py (synthetic scenes rescaled to 28 px median diameter, 128x128 crops)
  train:   python unet_probe.py train data_*.npz --minutes 10 --base 8 --out unet8.pt
  predict: labels = segment(model, image_float, median_diameter_px)
"""
import sys, time, argparse
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries, watershed
from skimage.transform import rescale, resize

TARGET_DIAMETER_PX = 28.0


# ---------------------------------------------------------------- architecture
def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self, base=8, depth=4, n_classes=3):
        super().__init__()
        ch = [base * 2 ** i for i in range(depth + 1)]          # base 8: 8 16 32 64 128 (0.49 M params, 1.0 MB fp16)
        self.down = nn.ModuleList([block(1, ch[0])] + [block(ch[i], ch[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in reversed(range(depth))])
        self.dec = nn.ModuleList([block(2 * ch[i], ch[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(ch[0], n_classes, 1)

    def forward(self, x):
        skips = []
        for i, d in enumerate(self.down):
            x = d(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([skips.pop(), up(x)], 1))
        return self.head(x)


# ---------------------------------------------------------------- targets, normalisation
def normalize(image):
    lo, hi = np.percentile(image, (1, 99.8))
    return ((image - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def three_class(labels):
    """0 background, 1 interior, 2 boundary (2 px inner rim of every crystal)."""
    target = (labels > 0).astype(np.int64)
    rim = find_boundaries(labels, mode="inner") & (labels > 0)
    rim |= ndi.binary_dilation(rim) & (labels > 0)                 # 2 px thick
    target[rim] = 2
    return target


# ---------------------------------------------------------------- training
def augment(img, lab, rng):
    k = int(rng.integers(4)); img, lab = np.rot90(img, k), np.rot90(lab, k)
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    img = normalize(img)
    img = np.clip(img, 0, 1) ** rng.uniform(0.6, 1.6) * rng.uniform(0.7, 1.3) + rng.uniform(-0.15, 0.15)
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(lab)


def train(files, minutes=10.0, out="unet.pt", base=8, depth=4, batch=8, seed=0):
    torch.set_num_threads(1); torch.manual_seed(seed); rng = np.random.default_rng(seed)
    imgs = np.concatenate([np.load(f)["img"] for f in files]); labs = np.concatenate([np.load(f)["lab"] for f in files])
    targets = np.stack([three_class(l) for l in labs])
    print(f"{len(imgs)} crops", flush=True)
    model = UNet(base, depth); opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=1e-4)
    weight = torch.tensor([1.0, 1.0, 2.0])                          # boundary pixels are rare: weight them up
    t0, step, budget = time.time(), 0, minutes * 60
    while time.time() - t0 < budget:
        lr = 2e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, (time.time() - t0) / budget)))  # cosine over the time budget
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(imgs), batch)
        pairs = [augment(imgs[i], targets[i], rng) for i in idx]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None]
        y = torch.from_numpy(np.stack([p[1] for p in pairs]))
        loss = F.cross_entropy(model(x), y, weight=weight)
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
        if step % 100 == 0:
            print(f"step {step} {time.time() - t0:.0f}s loss {loss.item():.4f}", flush=True)
    model.eval()
    torch.save({"state": {k: v.half() for k, v in model.state_dict().items()}, "base": base, "depth": depth}, out)
    return model


def load(path):
    ck = torch.load(path, weights_only=True)
    model = UNet(ck["base"], ck["depth"]); model.load_state_dict({k: v.float() for k, v in ck["state"].items()})
    return model.eval()


# ---------------------------------------------------------------- inference + post-processing
@torch.no_grad()
def probabilities(model, image):
    """Softmax (3, Y, X) of a normalised float image, padded to a multiple of 2**depth."""
    m = 2 ** len(model.up); h, w = image.shape
    x = np.pad(image, ((0, -h % m), (0, -w % m)), mode="reflect")
    p = torch.softmax(model(torch.from_numpy(x)[None, None]), 1)[0, :, :h, :w]
    return p.numpy()


def instances(prob, seed_threshold=0.7, fg_threshold=0.6, min_size=20):
    """Seeds = connected interior cores; flood the foreground (interior + boundary) by watershed."""
    interior, boundary = prob[1], prob[2]
    seeds = ndi.label(interior > seed_threshold)[0]
    sizes = np.bincount(seeds.ravel()); small = sizes < min_size; small[0] = False
    seeds[small[seeds]] = 0
    foreground = (interior + boundary) > fg_threshold
    labels = watershed(boundary - interior, seeds, mask=foreground)
    return labels


def segment(model, image, median_diameter_px, **kw):
    """Instance labels (same shape as ``image``) for a raw gray image and the user's median diameter."""
    torch.set_num_threads(1)
    f = TARGET_DIAMETER_PX / median_diameter_px
    small = rescale(normalize(image.astype(np.float32)), f, order=1, anti_aliasing=f < 1, preserve_range=True)
    labels = instances(probabilities(model, small.astype(np.float32)), **kw)
    return resize(labels, image.shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(); ap.add_argument("cmd"); ap.add_argument("files", nargs="+")
    ap.add_argument("--minutes", type=float, default=10); ap.add_argument("--out", default="unet.pt")
    ap.add_argument("--base", type=int, default=8); ap.add_argument("--depth", type=int, default=4)
    a = ap.parse_args()
    if a.cmd == "train":
        train(a.files, a.minutes, a.out, a.base, a.depth)
