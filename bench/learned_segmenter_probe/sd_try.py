import traceback, numpy as np
try:
    import stardist, csbdeep; print("import ok", stardist.__version__, csbdeep.__version__)
    from stardist.models import Config2D, StarDist2D
    conf = Config2D(n_rays=32, grid=(2,2), n_channel_in=1, unet_n_depth=3, unet_n_filter_base=16, train_patch_size=(128,128), train_batch_size=4, train_tensorboard=False)
    m = StarDist2D(conf, name="t", basedir="sdmodels"); print("model built", m.keras_model.count_params())
    from stardist import star_dist
    X = np.random.rand(8,128,128).astype(np.float32); Y = np.zeros((8,128,128),np.int32); Y[:,30:60,30:60]=1; Y[:,70:100,70:110]=2
    m.train(X, Y, validation_data=(X[:2],Y[:2]), epochs=1, steps_per_epoch=2)
    print("trained")
    lab, _ = m.predict_instances(X[0]); print("predicted", lab.max())
except Exception:
    traceback.print_exc()
