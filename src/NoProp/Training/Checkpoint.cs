using System.Text.Json;
using System.Text.Json.Serialization;
using NoProp.Methods;
using NoProp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Training;

/// <summary>Where in training a checkpoint was taken, and what the loop needs to continue from there.</summary>
public sealed record TrainerState
{
    /// <summary>0-based index of the epoch in progress (equal to the number of completed epochs at an epoch boundary).</summary>
    public int Epoch { get; set; }
    public int Stage { get; set; }
    /// <summary>The next batch of the stage to run.</summary>
    public int Batch { get; set; }
    public double TrainSeconds { get; set; }
    public double EpochTrainSeconds { get; set; }
    public long EpochImages { get; set; }
    public double[] EpochLossSums { get; set; } = [];
    public long EpochLossSteps { get; set; }
    public double BestValidationAccuracy { get; set; } = double.NegativeInfinity;
    public int BestEpoch { get; set; }
    public List<EpochRecord> History { get; set; } = new();
    public TrainingOptions Options { get; set; } = new();
    /// <summary>torch's global generator state (dropout and training noise), base64.</summary>
    public string RngState { get; set; } = "";
}

/// <summary>
/// A resumable checkpoint in <c>DIR/checkpoint/</c>: the network, every optimizer's state, and the trainer's
/// position and generator state. Written into a temporary folder and swapped in, so a crash mid-write keeps
/// the previous checkpoint.
/// </summary>
public static class Checkpoint
{
    public const string FolderName = "checkpoint";
    private const string StateFile = "state.json";
    private const string NetworkFile = "network.bin";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string PathIn(string outputDirectory) => Path.Combine(outputDirectory, FolderName);

    public static bool Exists(string outputDirectory) => File.Exists(Path.Combine(PathIn(outputDirectory), StateFile));

    public static void Save(INoPropMethod method, TrainerState state, string outputDirectory)
    {
        var final = PathIn(outputDirectory);
        var temporary = final + ".tmp";
        var previous = final + ".old";
        if (Directory.Exists(temporary)) Directory.Delete(temporary, true);
        Directory.CreateDirectory(temporary);

        using (var rng = random.get_rng_state())
            state.RngState = Convert.ToBase64String(rng.data<byte>().ToArray());
        method.Network.save(Path.Combine(temporary, NetworkFile));
        for (int i = 0; i < method.Optimizers.Count; i++)
            method.Optimizers[i].save_state_dict(Path.Combine(temporary, $"optimizer-{i}.bin"));
        File.WriteAllText(Path.Combine(temporary, StateFile), JsonSerializer.Serialize(state, Json));
        File.WriteAllText(Path.Combine(temporary, ModelStore.ConfigFile), method.Config.ToJson());

        if (Directory.Exists(previous)) Directory.Delete(previous, true);
        if (Directory.Exists(final)) Directory.Move(final, previous);
        Directory.Move(temporary, final);
        if (Directory.Exists(previous)) Directory.Delete(previous, true);
    }

    /// <summary>Reads the model configuration stored with a checkpoint.</summary>
    public static ModelConfig ReadConfig(string outputDirectory)
    {
        var path = Path.Combine(PathIn(outputDirectory), ModelStore.ConfigFile);
        if (!File.Exists(path)) throw new NoPropException($"--resume {outputDirectory}: no checkpoint found ({path} is missing)");
        return ModelConfig.FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Restores network, optimizers and generator state into <paramref name="method"/>; returns the trainer state.</summary>
    public static TrainerState Load(INoPropMethod method, string outputDirectory)
    {
        var folder = PathIn(outputDirectory);
        var statePath = Path.Combine(folder, StateFile);
        if (!File.Exists(statePath)) throw new NoPropException($"--resume {outputDirectory}: no checkpoint found ({statePath} is missing)");
        TrainerState state;
        try
        {
            state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(statePath), Json)
                    ?? throw new NoPropException($"{statePath}: empty checkpoint state");
        }
        catch (JsonException e)
        {
            throw new NoPropException($"{statePath}: corrupt checkpoint state ({e.Message})", e);
        }
        ModelStore.LoadWeights(method, Path.Combine(folder, NetworkFile));
        for (int i = 0; i < method.Optimizers.Count; i++)
        {
            var path = Path.Combine(folder, $"optimizer-{i}.bin");
            if (!File.Exists(path)) throw new NoPropException($"{path}: file not found (incomplete checkpoint)");
            method.Optimizers[i].load_state_dict(path);
        }
        if (state.RngState.Length > 0)
        {
            using var rng = tensor(Convert.FromBase64String(state.RngState), ScalarType.Byte);
            random.set_rng_state(rng);
        }
        return state;
    }
}
