using NoProp.Methods;
using NoProp.Runtime;
using static TorchSharp.torch;

namespace NoProp.Training;

/// <summary>
/// A trained model on disk: <c>model.json</c> (the <see cref="ModelConfig"/>) and <c>model.bin</c> (TorchSharp
/// weights of every parameter and buffer). Files are written beside and renamed, so a crash never leaves a
/// half-written model.
/// </summary>
public static class ModelStore
{
    public const string ConfigFile = "model.json";
    public const string WeightsFile = "model.bin";

    public static void Save(INoPropMethod method, string directory)
    {
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFile), method.Config.ToJson());
        AtomicFile.Write(Path.Combine(directory, WeightsFile), path => method.Network.save(path));
    }

    public static INoPropMethod Load(string directory, Device? device = null)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!Directory.Exists(directory)) throw new NoPropException($"--model {directory}: folder not found");
        if (!File.Exists(configPath)) throw new NoPropException($"{configPath}: file not found (is {directory} a model folder written by 'noprop train'?)");
        if (!File.Exists(weightsPath)) throw new NoPropException($"{weightsPath}: file not found");
        var config = ModelConfig.FromJson(File.ReadAllText(configPath), configPath);
        var method = MethodRegistry.Create(config, device);
        LoadWeights(method, weightsPath);
        return method;
    }

    public static void LoadWeights(INoPropMethod method, string weightsPath)
    {
        try
        {
            method.Network.load(weightsPath, strict: true);
        }
        catch (Exception e) when (e is not NoPropException)
        {
            throw new NoPropException($"{weightsPath}: the weights do not match the model described by {ConfigFile} ({e.Message})", e);
        }
    }
}

/// <summary>Write-beside-then-rename helpers.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<string> writeTo)
    {
        var temporary = path + ".tmp";
        writeTo(temporary);
        File.Move(temporary, path, overwrite: true);
    }

    public static void WriteAllText(string path, string text) => Write(path, p => File.WriteAllText(p, text));
}
