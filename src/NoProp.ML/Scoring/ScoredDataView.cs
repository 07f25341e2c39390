using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Scoring;

/// <summary>
/// The lazy result of <see cref="NoPropTransformer.Transform"/>: input columns pass through, Score and PredictedLabel
/// are computed on demand, a batch of rows per forward pass. A second cursor over the feature column reads ahead to
/// fill each batch, so the main cursor still serves one row at a time.
/// </summary>
internal sealed class ScoredDataView : IDataView
{
    private readonly IDataView input;
    private readonly BatchScorer scorer;
    private readonly int featureColumnIndex;
    private readonly int batchSize;

    public ScoredDataView(IDataView input, DataViewSchema schema, BatchScorer scorer, int featureColumnIndex, int batchSize)
    {
        this.input = input;
        this.scorer = scorer;
        this.featureColumnIndex = featureColumnIndex;
        this.batchSize = batchSize;
        Schema = schema;
    }

    public DataViewSchema Schema { get; }

    // The read-ahead cursor must see rows in the main cursor's order, which a random order would break.
    public bool CanShuffle => false;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = input.Schema.Count;
        var inputColumns = active.Where(i => i < inputCount).Select(i => input.Schema[i]);
        bool scoring = active.Any(i => i >= inputCount);
        var readAhead = scoring ? input.GetRowCursor([input.Schema[featureColumnIndex]]) : null;
        return new ScoredCursor(this, input.GetRowCursor(inputColumns), readAhead, active);
    }

    // One cursor only: the scorer serialises inference anyway, and parallel cursors would each need a read-ahead.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class ScoredCursor : DataViewRowCursor
    {
        private readonly ScoredDataView view;
        private readonly DataViewRowCursor input;
        private readonly DataViewRowCursor? readAhead;
        private readonly Features.FeatureReader? readFeatures;
        private readonly HashSet<int> active;
        private readonly float[] features;
        private readonly float[] probabilities;
        private long batchStart;
        private int batchCount;

        public ScoredCursor(ScoredDataView view, DataViewRowCursor input, DataViewRowCursor? readAhead, HashSet<int> active)
        {
            this.view = view;
            this.input = input;
            this.readAhead = readAhead;
            this.active = active;
            if (readAhead is not null)
            {
                readFeatures = Features.FeatureReaders.Create(readAhead, readAhead.Schema[view.featureColumnIndex], view.scorer.Image);
                features = new float[view.batchSize * view.scorer.FeatureSize];
                probabilities = new float[view.batchSize * view.scorer.ClassCount];
            }
            else
            {
                features = [];
                probabilities = [];
            }
        }

        public override DataViewSchema Schema => view.Schema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override bool MoveNext() => input.MoveNext();
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<T> GetGetter<T>(DataViewSchema.Column column)
        {
            int inputCount = view.input.Schema.Count;
            if (!active.Contains(column.Index))
                throw new InvalidOperationException($"column '{column.Name}' was not requested when this cursor was created");
            if (column.Index < inputCount) return input.GetGetter<T>(view.input.Schema[column.Index]);
            int classes = view.scorer.ClassCount;
            Delegate getter = column.Index == inputCount
                ? (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                {
                    var slice = CurrentProbabilities();
                    var editor = VBufferEditor.Create(ref value, classes);
                    slice.CopyTo(editor.Values);
                    value = editor.Commit();
                })
                : (ValueGetter<uint>)((ref uint value) => value = BatchScorer.PredictedKey(CurrentProbabilities()));
            return getter as ValueGetter<T>
                ?? throw new InvalidOperationException($"column '{column.Name}' is {column.Type}, not {typeof(T).Name}");
        }

        /// <summary>The current row's probabilities, scoring the next batch when the row lies beyond the current one.</summary>
        private ReadOnlySpan<float> CurrentProbabilities()
        {
            long position = input.Position;
            if (position < 0) throw new InvalidOperationException("the cursor is not on a row (call MoveNext first)");
            while (position >= batchStart + batchCount) ReadAndScoreNextBatch();
            int classes = view.scorer.ClassCount;
            return probabilities.AsSpan((int)(position - batchStart) * classes, classes);
        }

        private void ReadAndScoreNextBatch()
        {
            int size = view.scorer.FeatureSize;
            batchStart += batchCount;
            batchCount = 0;
            while (batchCount < view.batchSize && readAhead!.MoveNext())
            {
                readFeatures!(features.AsSpan(batchCount * size, size));
                batchCount++;
            }
            if (batchCount == 0) throw new InvalidOperationException("the input ended before the row being scored (the data view returned different rows to two cursors)");
            view.scorer.Score(features, batchCount, probabilities);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                input.Dispose();
                readAhead?.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
