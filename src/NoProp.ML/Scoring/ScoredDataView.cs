using Microsoft.ML;
using Microsoft.ML.Data;
using NoProp.ML.Features;

namespace NoProp.ML.Scoring;

/// <summary>
/// The lazy result of <see cref="NoPropTransformer.Transform"/>: input columns pass through, Score and PredictedLabel
/// are computed on demand, a batch of rows per forward pass, in one pass over one input cursor. When a cursor needs a
/// score it reads a batch of rows ahead on its input cursor, keeping each row's requested input columns
/// (<see cref="RowBuffer"/>) and its features, and then serves the buffered rows one at a time. So every upstream row is
/// read (an image decoded) once, where a second read-ahead cursor (as ML.NET's own BatchDataViewMapperBase uses) would
/// read the whole input twice. A row's score depends only on the model and the row (<see cref="PerRowNoise"/>), so the
/// input may be shuffled.
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

    public bool CanShuffle => input.CanShuffle;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = input.Schema.Count;
        var inputColumns = active.Where(i => i < inputCount).Select(i => input.Schema[i]).ToList();
        bool scoring = active.Any(i => i >= inputCount);
        if (scoring && !active.Contains(featureColumnIndex)) inputColumns.Add(input.Schema[featureColumnIndex]);
        var cursor = input.GetRowCursor(inputColumns, rand);
        return scoring ? new ScoringCursor(this, cursor, active) : new PassThroughCursor(this, cursor, active);
    }

    // One cursor only: the scorer serialises inference anyway.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private static InvalidOperationException NotRequested(DataViewSchema.Column column) =>
        new($"column '{column.Name}' was not requested when this cursor was created");

    /// <summary>No score requested: the input cursor's rows as they are.</summary>
    private sealed class PassThroughCursor(ScoredDataView view, DataViewRowCursor input, HashSet<int> active) : DataViewRowCursor
    {
        public override DataViewSchema Schema => view.Schema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override bool MoveNext() => input.MoveNext();
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<T> GetGetter<T>(DataViewSchema.Column column) =>
            active.Contains(column.Index) ? input.GetGetter<T>(view.input.Schema[column.Index]) : throw NotRequested(column);

        protected override void Dispose(bool disposing)
        {
            if (disposing) input.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Reads a batch of rows ahead on its one input cursor, scores them together, serves them one by one.</summary>
    private sealed class ScoringCursor : DataViewRowCursor
    {
        private readonly ScoredDataView view;
        private readonly DataViewRowCursor input;
        private readonly HashSet<int> active;
        private readonly RowBuffer rows;
        private readonly FeatureReader readFeatures;
        private readonly float[] features;
        private readonly float[] probabilities;
        private int count;        // rows in the current batch
        private int slot = -1;    // the current row's place in the batch
        private int filling;      // the place being filled while a batch is read
        private bool scored;
        private bool done;
        private long position = -1;

        public ScoringCursor(ScoredDataView view, DataViewRowCursor input, HashSet<int> active)
        {
            this.view = view;
            this.input = input;
            this.active = active;
            int inputCount = view.input.Schema.Count;
            var passThrough = active.Where(i => i < inputCount).Select(i => view.input.Schema[i]);
            rows = new RowBuffer(input, passThrough, view.batchSize);
            var featureColumn = view.input.Schema[view.featureColumnIndex];
            // A feature column also read downstream is read once, into the buffer, and the features come from there.
            readFeatures = rows.Holds(featureColumn)
                ? FeatureReaders.Create(featureColumn, view.scorer.Image, rows.Getter(featureColumn, () => filling), () => input.Position)
                : FeatureReaders.Create(input, featureColumn, view.scorer.Image);
            features = new float[view.batchSize * view.scorer.FeatureSize];
            probabilities = new float[view.batchSize * view.scorer.ClassCount];
        }

        public override DataViewSchema Schema => view.Schema;
        public override long Position => position;
        public override long Batch => input.Batch;
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override bool MoveNext()
        {
            if (done) return false;
            if (slot + 1 >= count && !ReadBatch())
            {
                done = true;
                return false;
            }
            slot++;
            position++;
            return true;
        }

        /// <summary>Reads up to a batch of rows from the input cursor (its columns into the buffer, its features); false at the end.</summary>
        private bool ReadBatch()
        {
            int size = view.scorer.FeatureSize;
            count = 0;
            slot = -1;
            scored = false;
            while (count < view.batchSize && input.MoveNext())
            {
                filling = count;
                rows.Read(count);
                readFeatures(features.AsSpan(count * size, size));
                count++;
            }
            return count > 0;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => rows.IdGetter(() => slot);

        public override ValueGetter<T> GetGetter<T>(DataViewSchema.Column column)
        {
            if (!active.Contains(column.Index)) throw NotRequested(column);
            int inputCount = view.input.Schema.Count;
            var getter = column.Index < inputCount
                ? rows.Getter(view.input.Schema[column.Index], () => slot)
                : column.Index == inputCount
                    ? (ValueGetter<VBuffer<float>>)((ref VBuffer<float> value) =>
                    {
                        var current = CurrentProbabilities();
                        var editor = VBufferEditor.Create(ref value, current.Length);
                        current.CopyTo(editor.Values);
                        value = editor.Commit();
                    })
                    : (ValueGetter<uint>)((ref uint value) => value = BatchScorer.PredictedKey(CurrentProbabilities()));
            return getter as ValueGetter<T>
                ?? throw new InvalidOperationException($"column '{column.Name}' is {column.Type}, not {typeof(T).Name}");
        }

        /// <summary>The current row's probabilities, scoring its batch on first use.</summary>
        private ReadOnlySpan<float> CurrentProbabilities()
        {
            if (position < 0 || done) throw new InvalidOperationException("the cursor is not on a row (call MoveNext first)");
            if (!scored)
            {
                view.scorer.Score(features, count, probabilities);
                scored = true;
            }
            int classes = view.scorer.ClassCount;
            return probabilities.AsSpan(slot * classes, classes);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                rows.Dispose();
                input.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
