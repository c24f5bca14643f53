import sys, time, numpy as np, os
from stardist.models import Config2D, StarDist2D
from stardist import fill_label_holes
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(1)
from unet_probe import normalize
minutes = float(sys.argv[1]); files = sys.argv[2:]
imgs = np.concatenate([np.load(f)["img"] for f in files]); labs = np.concatenate([np.load(f)["lab"] for f in files])
X = [normalize(i) for i in imgs]; Y = [fill_label_holes(l) for l in labs]
print(len(X), "crops", flush=True)
conf = Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, unet_n_depth=3, unet_n_filter_base=16,
                train_patch_size=(128, 128), train_batch_size=8, train_tensorboard=False)
m = StarDist2D(conf, name=os.environ.get("SDNAME","sd"), basedir="sdmodels")
print("params", m.keras_model.count_params(), flush=True)
def aug(x, y):
    k = np.random.randint(4); x, y = np.rot90(x, k), np.rot90(y, k)
    if np.random.rand() < .5: x, y = x[:, ::-1], y[:, ::-1]
    x = np.clip(x, 0, 1) ** np.random.uniform(.6, 1.6) * np.random.uniform(.7, 1.3) + np.random.uniform(-.15, .15)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y)
# time one epoch of 20 steps to fit the budget
t = time.time(); nval = 32
m.train(X[nval:], Y[nval:], validation_data=(X[:nval], Y[:nval]), augmenter=aug, epochs=1, steps_per_epoch=20)
per_step = (time.time() - t) / 20; print("s/step", per_step, flush=True)
steps = int((minutes * 60 - (time.time() - t)) / per_step / 1.1)
epochs = max(1, steps // 100)
m.train(X[nval:], Y[nval:], validation_data=(X[:nval], Y[:nval]), augmenter=aug, epochs=epochs, steps_per_epoch=100)
m.optimize_thresholds(X[:nval], Y[:nval])
print("done", (time.time() - t) / 60, "min", flush=True)
