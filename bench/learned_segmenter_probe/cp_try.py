import traceback, torch, numpy as np
torch.set_num_threads(1)
import cellpose; from cellpose import models, version; print("cellpose", version)
for pm in [None, False]:
    try:
        m = models.CellposeModel(gpu=False, pretrained_model=pm); print("built", pm, sum(p.numel() for p in m.net.parameters()))
    except Exception as e:
        print("FAIL", pm, type(e).__name__, str(e)[:300])
