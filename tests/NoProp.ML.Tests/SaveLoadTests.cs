using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Tests;

[TestClass]
public sealed class SaveLoadTests
{
    private static string SavedModel()
    {
        var path = Path.Combine(MlTestSupport.TempDirectory(), "noprop.zip");
        MlTestSupport.Context.Model.Save(MlTestSupport.Model, MlTestSupport.Train.Schema, path);
        return path;
    }

    [TestMethod]
    public void TheZipHoldsTheOptionsClassNamesAndWeights()
    {
        using var zip = ZipFile.OpenRead(SavedModel());
        var names = zip.Entries.Select(e => e.FullName).ToList();
        var weights = names.SingleOrDefault(n => n.EndsWith("/TorchModel", StringComparison.Ordinal));
        Assert.IsNotNull(weights, string.Join(", ", names));
        Assert.IsTrue(zip.GetEntry(weights)!.Length > 100_000, "the TorchSharp weights of two DT blocks");
        var json = names.Single(n => n.EndsWith("/NoPropModel.json", StringComparison.Ordinal));
        using var reader = new StreamReader(zip.GetEntry(json)!.Open());
        using var config = JsonDocument.Parse(reader.ReadToEnd());
        var classes = config.RootElement.GetProperty("class_names").EnumerateArray().Select(e => e.GetString()).ToArray();
        CollectionAssert.AreEqual(MlTestSupport.NoProp.ClassNames.ToArray(), classes);
        Assert.AreEqual(2, config.RootElement.GetProperty("blocks").GetInt32());
        Assert.AreEqual("discrete_time", config.RootElement.GetProperty("method").GetString());
    }

    [TestMethod]
    public void DeterministicInferenceIsSavedWithTheModel()
    {
        var ml = new MLContext(seed: 1);
        var options = MlTestSupport.TinyOptions();
        options.DeterministicInference = true;
        var train = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: true, 128));
        using var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.NoProp(options)).Fit(train);
        Assert.AreEqual(Methods.DtInference.Deterministic, model.LastTransformer.Configuration.DtInference);
        var path = Path.Combine(MlTestSupport.TempDirectory(), "deterministic.zip");
        ml.Model.Save(model, train.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        using (loaded as IDisposable)
        {
            var noProp = ((TransformerChain<ITransformer>)loaded).OfType<NoPropTransformer>().Single();
            Assert.AreEqual(Methods.DtInference.Deterministic, noProp.Configuration.DtInference);
        }
        Assert.AreEqual(Methods.DtInference.Stochastic, MlTestSupport.NoProp.Configuration.DtInference, "the paper's inference by default");
    }

    [TestMethod]
    public void BFloat16InferenceIsSavedWithTheModelAndScoresIdenticallyAfterLoading()
    {
        var ml = new MLContext(seed: 1);
        var options = MlTestSupport.TinyOptions();
        options.InferencePrecision = NoPropInferencePrecision.BFloat16;
        var train = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: true, MlTestSupport.TrainRows));
        var test = ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, 64));
        using var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(new NoPropEstimator(ml, options)).Fit(train);
        Assert.AreEqual(NoPropInferencePrecision.BFloat16, model.LastTransformer.InferencePrecision);
        var scores = MlTestSupport.Scores(model.Transform(test));

        // The same training as the shared float32 model (validation only chooses among epochs; there is one): the same
        // weights, scored with bfloat16 convolutions: close to the float32 scores, not equal to them.
        var fp32 = MlTestSupport.Scores(MlTestSupport.Model.Transform(MlTestSupport.Context.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, 64))));
        double largest = fp32.Zip(scores).Max(p => p.First.Zip(p.Second).Max(v => Math.Abs(v.First - v.Second)));
        Assert.IsTrue(largest > 0 && largest < 0.05, $"bf16 scores differ from fp32 by {largest}");
        Assert.AreEqual(NoPropInferencePrecision.Float32, MlTestSupport.NoProp.InferencePrecision, "float32 by default");

        var path = Path.Combine(MlTestSupport.TempDirectory(), "bf16.zip");
        ml.Model.Save(model, train.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        using (loaded as IDisposable)
        {
            var noProp = ((TransformerChain<ITransformer>)loaded).OfType<NoPropTransformer>().Single();
            Assert.AreEqual(NoPropInferencePrecision.BFloat16, noProp.InferencePrecision);
            var reloaded = MlTestSupport.Scores(loaded.Transform(test));
            for (int i = 0; i < scores.Count; i++) CollectionAssert.AreEqual(scores[i], reloaded[i], $"row {i}");
        }
    }

    [TestMethod]
    public void LoadInANewContextGivesIdenticalScores()
    {
        var path = SavedModel();
        var expected = MlTestSupport.Scores(MlTestSupport.Model.Transform(MlTestSupport.Test));

        var fresh = new MLContext();   // no registration call
        var loaded = fresh.Model.Load(path, out var inputSchema);
        using (loaded as IDisposable)
        {
            Assert.IsNotNull(inputSchema.GetColumnOrNull("Features"));
            var noProp = ((TransformerChain<ITransformer>)loaded).OfType<NoPropTransformer>().Single();
            Assert.AreEqual(MlTestSupport.NoProp.ScoringSeed, noProp.ScoringSeed);
            var test = fresh.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, MlTestSupport.TestRows));
            var actual = MlTestSupport.Scores(loaded.Transform(test));
            Assert.AreEqual(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++) CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}");
            var metrics = fresh.MulticlassClassification.Evaluate(loaded.Transform(test));
            var original = MlTestSupport.Context.MulticlassClassification.Evaluate(MlTestSupport.Model.Transform(MlTestSupport.Test));
            Assert.AreEqual(original.MicroAccuracy, metrics.MicroAccuracy);
        }
    }

    [TestMethod]
    public void LoadInAFreshProcessGivesIdenticalScores()
    {
        var dir = MlTestSupport.TempDirectory();
        var path = SavedModel();
        var digits = MlTestSupport.Digits(train: false, 50);
        var rowsFile = Path.Combine(dir, "rows.bin");
        using (var writer = new BinaryWriter(File.Create(rowsFile)))
        {
            writer.Write(digits.Count);
            writer.Write(digits[0].Features.Length);
            foreach (var d in digits) foreach (var v in d.Features) writer.Write(v);
        }
        var scoresFile = Path.Combine(dir, "scores.bin");
        var helper = Path.Combine(AppContext.BaseDirectory, "NoProp.ML.ScoringProcess.dll");
        Assert.IsTrue(File.Exists(helper), $"{helper} is built beside the tests");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { helper, path, rowsFile, scoresFile }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(3)), "the scoring process finished");
        Assert.AreEqual(0, process.ExitCode, stdout + stderr.Result);

        var expected = MlTestSupport.Scores(MlTestSupport.Model.Transform(MlTestSupport.Context.Data.LoadFromEnumerable(digits)));
        using var reader = new BinaryReader(File.OpenRead(scoresFile));
        Assert.AreEqual(digits.Count, reader.ReadInt32());
        Assert.AreEqual(10, reader.ReadInt32());
        for (int i = 0; i < digits.Count; i++)
            for (int k = 0; k < 10; k++)
                Assert.AreEqual(expected[i][k], reader.ReadSingle(), $"row {i}, class {k}: bitwise identical");
    }

    [TestMethod]
    public void ASingleSavedTransformerLoadsBackAsItself()
    {
        var path = Path.Combine(MlTestSupport.TempDirectory(), "alone.zip");
        var keyed = MlTestSupport.Model.Take(1).Single().Transform(MlTestSupport.Train);
        MlTestSupport.Context.Model.Save(MlTestSupport.NoProp, keyed.Schema, path);
        using var loaded = (NoPropTransformer)new MLContext().Model.Load(path, out _);
        CollectionAssert.AreEqual(MlTestSupport.NoProp.ClassNames.ToArray(), loaded.ClassNames.ToArray());
        Assert.AreEqual(MlTestSupport.NoProp.ImageShape, loaded.ImageShape);
        Assert.AreEqual(MlTestSupport.NoProp.Configuration.NormalizationMean[0], loaded.Configuration.NormalizationMean[0]);
    }

    [TestMethod]
    public void AModelSavedInTheSecondFormatStillLoadsAndScoresAsItDid()
    {
        // Fixtures/noprop-v2.zip was saved by the adapter before the inference precision was stored (format 0x00010002,
        // commit 51588fb; 64 MNIST rows, T = 1, seed 5); noprop-v2.scores.bin holds its scores of the first 20 MNIST test
        // images, written by that version. It must load as float32 inference and score as it did, to float rounding:
        // where the CPU has AVX-512, inference's grouped convolutions now run in the kernel written here
        // (GroupedConvolution: another summation order than oneDNN's).
        CheckFixture("noprop-v2", tolerance: 1e-6f, (noProp, _) =>
        {
            Assert.AreEqual(NoPropInferencePrecision.Float32, noProp.InferencePrecision);
            Assert.AreEqual(1, noProp.Model.History.Count, "the second format keeps the history");
        });
    }

    [TestMethod]
    public void AModelSavedInTheFirstFormatStillLoadsAndScoresAsItDid()
    {
        // Fixtures/noprop-v1.zip was saved by the adapter before typed label values and the training history were
        // stored (format 0x00010001; 64 MNIST rows, T = 1, seed 5); noprop-v1.scores.bin holds its scores of the
        // first 20 MNIST test images, written by that version. Float rounding only: inference now runs the blocks'
        // image paths fused (another summation order).
        CheckFixture("noprop-v1", tolerance: 1e-6f, (noProp, scored) =>
        {
            Assert.AreEqual(5L, noProp.Model.Seed);
            Assert.AreEqual(Methods.MethodKind.DiscreteTime, noProp.Model.Configuration.Method, "\"method\": \"discrete_time\" in the zip's NoPropModel.json");
            Assert.AreEqual(NoPropMethod.DiscreteTime, noProp.Model.Method);
            Assert.AreEqual(0, noProp.Model.History.Count, "the first format kept no history");
            VBuffer<ReadOnlyMemory<char>> keys = default;
            scored.Schema["PredictedLabel"].GetKeyValues(ref keys);
            CollectionAssert.AreEqual(noProp.ClassNames.ToArray(), keys.DenseValues().Select(k => k.ToString()).ToArray(), "text key values, as that version published");
        });
    }

    /// <summary>
    /// Loads Fixtures/<paramref name="name"/>.zip in a new MLContext, runs <paramref name="check"/> on its transformer
    /// and its scores of the first 20 MNIST test images, and compares those scores with the ones its version wrote
    /// (<paramref name="name"/>.scores.bin: rows and classes as two Int32s, then rows × classes Singles).
    /// </summary>
    private static void CheckFixture(string name, float tolerance, Action<NoPropTransformer, IDataView> check)
    {
        var fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
        var ml = new MLContext();
        var loaded = ml.Model.Load(Path.Combine(fixtures, name + ".zip"), out _);
        using (loaded as IDisposable)
        {
            var noProp = ((TransformerChain<ITransformer>)loaded).OfType<NoPropTransformer>().Single();
            var scored = loaded.Transform(ml.Data.LoadFromEnumerable(MlTestSupport.Digits(train: false, 20)));
            check(noProp, scored);
            var scores = MlTestSupport.Scores(scored);
            using var reader = new BinaryReader(File.OpenRead(Path.Combine(fixtures, name + ".scores.bin")));
            Assert.AreEqual(20, reader.ReadInt32());
            Assert.AreEqual(10, reader.ReadInt32());
            for (int i = 0; i < 20; i++)
                for (int k = 0; k < 10; k++)
                    Assert.AreEqual(reader.ReadSingle(), scores[i][k], tolerance, $"{name}: row {i}, class {k}");
        }
    }
}
