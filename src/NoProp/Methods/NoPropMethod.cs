using NoProp.Embeddings;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NoProp.Methods;

/// <summary>
/// What every method shares: the configuration check, the network built and moved to the device, the optimisers of
/// the method's kind (<see cref="MethodDefaults.Optimizer"/>) and their disposal. A method supplies its network, its
/// loss layout, its training step and its prediction.
/// </summary>
public abstract class NoPropMethod<TNetwork> : INoPropMethod where TNetwork : nn.Module
{
    private OptimizerHelper[] optimizers = [];

    /// <param name="kind">The method's own kind: its definition gives the optimiser.</param>
    /// <param name="config">The model configuration (validated here).</param>
    /// <param name="device">Where the network lives (null: the CPU).</param>
    /// <param name="network">Builds the network (its parameters initialised from the global generator).</param>
    /// <param name="losses">The names of the loss terms <see cref="TrainStep"/> reports.</param>
    protected NoPropMethod(MethodKind kind, ModelConfig config, Device? device, Func<ModelConfig, TNetwork> network, LossLayout losses)
    {
        config.Validate();
        Config = config;
        Definition = MethodRegistry.Get(kind);
        Net = network(config);
        if (device is not null && device.type != DeviceType.CPU) Net.to(device);
        Device = device ?? CPU;
        Losses = losses;
    }

    public ModelConfig Config { get; }

    /// <summary>The method's definition (names, defaults, options).</summary>
    public IMethodDefinition Definition { get; }

    public Device Device { get; }

    /// <summary>The typed network.</summary>
    protected TNetwork Net { get; }

    public nn.Module Network => Net;

    public abstract LabelEmbedding Embedding { get; }

    public IReadOnlyList<OptimizerHelper> Optimizers => optimizers;

    public LossLayout Losses { get; }

    public IReadOnlyList<string> LossNames => Losses.Columns;

    public virtual int StagesPerEpoch => 1;

    public virtual string DescribeStage(int stage) => "all";

    public abstract StepLosses TrainStep(int stage, Tensor x, Tensor y);

    public abstract Tensor PredictProbabilities(Tensor x, InferenceOptions options);

    /// <summary>An optimiser of the method's kind over <paramref name="parameters"/> with the configured learning rate and weight decay.</summary>
    protected OptimizerHelper NewOptimizer(IEnumerable<Parameter> parameters) => Definition.Defaults.Optimizer switch
    {
        OptimizerKind.AdamW => HeldScalarOptimizers.AdamW(parameters, Config.LearningRate, Config.WeightDecay),
        _ => HeldScalarOptimizers.Adam(parameters, Config.LearningRate, Config.WeightDecay),
    };

    /// <summary>Sets the optimisers a checkpoint keeps, in a fixed order (disposed with the method).</summary>
    protected void SetOptimizers(params OptimizerHelper[] all) => optimizers = all;

    /// <summary>The network's trainable parameters.</summary>
    protected List<Parameter> TrainableParameters() => Net.parameters().Where(p => p.requires_grad).ToList();

    /// <summary>Disposes what the method holds besides its network and optimisers.</summary>
    protected virtual void DisposeResources() { }

    public void Dispose()
    {
        foreach (var o in optimizers) (o as IDisposable)?.Dispose();
        DisposeResources();
        Net.Dispose();
        GC.SuppressFinalize(this);
    }
}
