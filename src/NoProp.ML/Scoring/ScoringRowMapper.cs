using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Scoring;

/// <summary>
/// Row-at-a-time scoring for <c>PredictionEngine</c> (and anything else that composes row mappers): wraps an input
/// row and scores it alone when Score or PredictedLabel is read. The result is cached by row position, because both
/// outputs are usually read for the same row.
/// </summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    private readonly BatchScorer scorer;
    private readonly int featureColumnIndex;

    public ScoringRowMapper(DataViewSchema inputSchema, DataViewSchema outputSchema, BatchScorer scorer, int featureColumnIndex)
    {
        InputSchema = inputSchema;
        OutputSchema = outputSchema;
        this.scorer = scorer;
        this.featureColumnIndex = featureColumnIndex;
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = dependingColumns.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
        if (dependingColumns.Any(c => c.Index >= InputSchema.Count) && needed.All(c => c.Index != featureColumnIndex))
            needed.Add(InputSchema[featureColumnIndex]);
        return needed;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new ScoredRow(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    private sealed class ScoredRow : DataViewRow
    {
        private readonly ScoringRowMapper mapper;
        private readonly DataViewRow input;
        private readonly HashSet<int> active;
        private readonly Features.FeatureReader? readFeatures;
        private readonly float[] features;
        private readonly float[] probabilities;
        private long scoredPosition = -1;

        public ScoredRow(ScoringRowMapper mapper, DataViewRow input, HashSet<int> active)
        {
            this.mapper = mapper;
            this.input = input;
            this.active = active;
            features = new float[mapper.scorer.FeatureSize];
            probabilities = new float[mapper.scorer.ClassCount];
            if (active.Any(i => i >= mapper.InputSchema.Count))
                readFeatures = Features.FeatureReaders.Create(input, input.Schema[mapper.featureColumnIndex], mapper.scorer.Image);
        }

        public override DataViewSchema Schema => mapper.OutputSchema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<T> GetGetter<T>(DataViewSchema.Column column)
        {
            int inputCount = mapper.InputSchema.Count;
            if (!active.Contains(column.Index))
                throw new InvalidOperationException($"column '{column.Name}' was not requested when this row was created");
            if (column.Index < inputCount) return input.GetGetter<T>(input.Schema[column.Index]);
            Delegate getter = column.Index == inputCount
                ? (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                {
                    Score();
                    var editor = VBufferEditor.Create(ref value, probabilities.Length);
                    probabilities.CopyTo(editor.Values);
                    value = editor.Commit();
                })
                : (ValueGetter<uint>)((ref uint value) => { Score(); value = BatchScorer.PredictedKey(probabilities); });
            return getter as ValueGetter<T>
                ?? throw new InvalidOperationException($"column '{column.Name}' is {column.Type}, not {typeof(T).Name}");
        }

        private void Score()
        {
            // PredictionEngine advances Position on every Predict, so the position identifies the row.
            if (scoredPosition == input.Position && input.Position >= 0) return;
            readFeatures!(features);
            mapper.scorer.Score(features, 1, probabilities);
            scoredPosition = input.Position;
        }
    }
}
