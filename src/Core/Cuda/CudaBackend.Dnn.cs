namespace RlMixup.Core.Cuda;

// Convolutions and batch norm through cuDNN (CudnnConvolutions, CudnnBatchNorm): one plan per shape,
// deterministic algorithms, forward and backward-data overwrite, backward-filter and the batch-norm
// parameter gradients accumulate, as the CPU backend does.
public sealed partial class CudaBackend
{
    public void Conv2dForward(Tensor y, Tensor x, Tensor w, Conv2dSpec spec)
    {
        Enter();
        OpChecks.Conv2d("conv2d", "output", y, x.Shape, w.Shape, spec);
        _conv.Forward(Raw(y), Raw(x), Raw(w), ConvShape.From(x.Shape, w.Shape, spec));
    }

    public void Conv2dBackwardData(Tensor dx, Tensor dy, Tensor w, Conv2dSpec spec)
    {
        Enter();
        OpChecks.Conv2d("conv2d backward-data", "dy", dy, dx.Shape, w.Shape, spec);
        _conv.BackwardData(Raw(dx), Raw(dy), Raw(w), ConvShape.From(dx.Shape, w.Shape, spec));
    }

    public void Conv2dBackwardFilter(Tensor dw, Tensor x, Tensor dy, Conv2dSpec spec)
    {
        Enter();
        OpChecks.Conv2d("conv2d backward-filter", "dy", dy, x.Shape, dw.Shape, spec);
        _conv.BackwardFilter(Raw(dw), Raw(x), Raw(dy), ConvShape.From(x.Shape, dw.Shape, spec));
    }

    public void BatchNormForwardTraining(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar,
        Tensor saveMean, Tensor saveInvStd, float momentum, float eps, bool updateRunning)
    {
        Enter();
        OpChecks.BatchNormTraining(y, x, gamma, beta, runningMean, runningVar, saveMean, saveInvStd, updateRunning);
        _bn.ForwardTraining(Raw(y), Raw(x), Raw(gamma), Raw(beta), Raw(runningMean), Raw(runningVar), Raw(saveMean), Raw(saveInvStd),
            x.Shape, momentum, eps, updateRunning);
    }

    public void BatchNormForwardInference(Tensor y, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float eps)
    {
        Enter();
        OpChecks.BatchNormInference(y, x, gamma, beta, runningMean, runningVar);
        _bn.ForwardInference(Raw(y), Raw(x), Raw(gamma), Raw(beta), Raw(runningMean), Raw(runningVar), x.Shape, eps);
    }

    public void BatchNormBackward(Tensor dx, Tensor? dgamma, Tensor? dbeta, Tensor dy, Tensor x, Tensor gamma,
        Tensor saveMean, Tensor saveInvStd, float eps)
    {
        Enter();
        OpChecks.BatchNormBackward(dx, dgamma, dbeta, dy, x, gamma, saveMean, saveInvStd);
        _bn.Backward(Raw(dx), RawOrZero(dgamma), RawOrZero(dbeta), Raw(dy), Raw(x), Raw(gamma), Raw(saveMean), Raw(saveInvStd), x.Shape, eps);
    }
}
