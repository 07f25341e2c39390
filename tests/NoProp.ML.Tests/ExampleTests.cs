using NoProp.Examples;

namespace NoProp.ML.Tests;

/// <summary>The examples, run with small sizes through their entry points (what `dotnet run --project` calls).</summary>
[TestClass]
public sealed class ExampleTests
{
    [TestMethod]
    public void TheMnistExampleTrainsEvaluatesAndSaves()
    {
        var zip = Path.Combine(MlTestSupport.TempDirectory(), "mnist.zip");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = MnistWithMlNet.Run(["--train", "200", "--test", "100", "--epochs", "1", "--blocks", "2", "--save", zip], stdout, stderr);
        Assert.AreEqual(0, code, stderr.ToString());
        StringAssert.Contains(stdout.ToString(), "MicroAccuracy");
        StringAssert.Contains(stdout.ToString(), "Confusion table");
        StringAssert.Contains(stderr.ToString(), "training NoProp-DT on 180 rows", "progress comes through the MLContext log");
        Assert.IsTrue(File.Exists(zip));
    }

    [TestMethod]
    public void ExportedImagesTrainTheImageFolderExample()
    {
        var dir = MlTestSupport.TempDirectory();
        var images = Path.Combine(dir, "images");
        var (exported, cliOut, cliErr) = CliProcess.Run("export-images", "--dataset", "mnist", "--split", "test", "--output", images, "--limit", "150");
        Assert.AreEqual(0, exported, cliErr);
        StringAssert.Contains(cliOut, "wrote 150 PNG files");
        Assert.AreEqual(10, Directory.GetDirectories(images).Length);
        Assert.AreEqual(150, Directory.GetFiles(images, "*.png", SearchOption.AllDirectories).Length);

        var zip = Path.Combine(dir, "images.zip");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = ImageFolderClassifier.Run(["--images", images, "--epochs", "1", "--blocks", "2", "--model", zip], stdout, stderr);
        Assert.AreEqual(0, code, stderr.ToString());
        var output = stdout.ToString();
        StringAssert.Contains(output, "MicroAccuracy");
        StringAssert.Contains(output, "Confusion table");
        Assert.IsTrue(File.Exists(zip));
        Assert.AreEqual(5, output.Split('\n').Count(l => l.Contains(": true ", StringComparison.Ordinal)), output);
    }
}
