import traceback, torch, numpy as np, time
torch.set_num_threads(1)
from cellpose import models, version, train; print("cellpose", version)
try:
    m = models.CellposeModel(gpu=False, pretrained_model=None, nchan=1 if False else 2)
    print("built", sum(p.numel() for p in m.net.parameters()))
    X = [np.random.rand(128,128).astype(np.float32) for _ in range(8)]; Y=[]
    for _ in range(8):
        y=np.zeros((128,128),np.int32); y[30:60,30:60]=1; y[70:100,70:110]=2; Y.append(y)
    t=time.time(); out = train.train_seg(m.net, train_data=X, train_labels=Y, channels=[0,0], n_epochs=1, batch_size=4, save_path="cpmodels", min_train_masks=1)
    print("trained", time.time()-t, out if not isinstance(out, tuple) else out[0])
    t=time.time(); masks = m.eval(np.random.rand(1024,1024).astype(np.float32), channels=[0,0], diameter=None)[0]; print("eval 1024", time.time()-t)
except Exception:
    traceback.print_exc()
