// Usage: NoProp.ML.ScoringProcess <model.zip> <rows.bin> <scores.bin>
// Loads the zip with a plain mlContext.Model.Load (nothing registered, nothing of NoProp touched before), scores the
// rows and writes the Score column. rows.bin: int32 row count, int32 feature size, then the float features;
// scores.bin: int32 row count, int32 class count, then the float scores. The test that starts this process checks
// that a model saved in one process scores identically in another.
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length != 3)
{
    Console.Error.WriteLine("usage: NoProp.ML.ScoringProcess <model.zip> <rows.bin> <scores.bin>");
    return 2;
}
var mlContext = new MLContext();
var model = mlContext.Model.Load(args[0], out var inputSchema);
var featureColumn = inputSchema.Single(c => !c.IsHidden && c.Type is VectorDataViewType);

using var input = new BinaryReader(File.OpenRead(args[1]));
int rows = input.ReadInt32(), size = input.ReadInt32();
var data = new List<FeatureRow>(rows);
for (int r = 0; r < rows; r++)
{
    var features = new float[size];
    for (int i = 0; i < size; i++) features[i] = input.ReadSingle();
    data.Add(new FeatureRow { Features = features });
}
var schemaDefinition = SchemaDefinition.Create(typeof(FeatureRow));
schemaDefinition[nameof(FeatureRow.Features)].ColumnName = featureColumn.Name;
schemaDefinition[nameof(FeatureRow.Features)].ColumnType = featureColumn.Type;
var scored = model.Transform(mlContext.Data.LoadFromEnumerable(data, schemaDefinition));
var scores = scored.GetColumn<float[]>("Score").ToList();

using var output = new BinaryWriter(File.Create(args[2]));
output.Write(scores.Count);
output.Write(scores[0].Length);
foreach (var row in scores)
    foreach (var v in row) output.Write(v);
return 0;

internal sealed class FeatureRow
{
    // The saved pipeline starts with MapValueToKey("Label"), so the column must exist; an empty label maps to key 0.
    public string Label { get; set; } = "";
    public float[] Features { get; set; } = [];
}
