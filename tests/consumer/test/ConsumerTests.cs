// Someone else's tests (tests/consumer/run.sh runs them with `dotnet test`, VSTest's test host): a model saved by the
// consumer app, loaded inside a test, scores exactly as it did right after training.
using Microsoft.ML;
using NoProp.Data;

[TestClass]
public sealed class ConsumerTests
{
    [TestMethod]
    public void ASavedModelScoresInATestAsItDidAfterTraining()
    {
        var model = Environment.GetEnvironmentVariable("NOPROP_CONSUMER_MODEL") ?? throw new InvalidOperationException("NOPROP_CONSUMER_MODEL is not set");
        var expected = File.ReadAllLines(Environment.GetEnvironmentVariable("NOPROP_CONSUMER_SCORES")!);
        var mlContext = new MLContext(seed: 1);
        var test = mlContext.Data.LoadFromEnumerable(ConsumerData.Digits(Datasets.Load("mnist").Test, ConsumerData.TestRows));
        var scored = mlContext.Model.Load(model, out _).Transform(test);
        CollectionAssert.AreEqual(expected, ConsumerData.ScoreLines(mlContext, scored).ToArray());
    }
}
