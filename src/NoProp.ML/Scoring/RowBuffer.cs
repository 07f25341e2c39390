using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Scoring;

/// <summary>
/// The values of some columns of a batch of rows read from one cursor, so that the rows can be served again after the
/// cursor moved past them (<see cref="ScoredDataView"/> reads a batch ahead to score it). Vectors are deep-copied (a
/// getter may reuse its buffers); other values (numbers, keys, text, images) are kept as the getter gave them. Each
/// getter is called once per row. Values follow ML.NET's rule: valid until the cursor serving them moves on.
/// </summary>
internal sealed class RowBuffer : IDisposable
{
    private readonly Dictionary<int, ColumnBuffer> columns = [];
    private readonly ValueGetter<DataViewRowId> readId;
    private readonly DataViewRowId[] ids;

    public RowBuffer(DataViewRow row, IEnumerable<DataViewSchema.Column> columnsToKeep, int capacity)
    {
        readId = row.GetIdGetter();
        ids = new DataViewRowId[capacity];
        foreach (var column in columnsToKeep)
        {
            var type = column.Type is VectorDataViewType vector
                ? typeof(VectorColumnBuffer<>).MakeGenericType(vector.ItemType.RawType)
                : typeof(ValueColumnBuffer<>).MakeGenericType(column.Type.RawType);
            columns[column.Index] = (ColumnBuffer)Activator.CreateInstance(type, row, column, capacity)!;
        }
    }

    public bool Holds(DataViewSchema.Column column) => columns.ContainsKey(column.Index);

    /// <summary>Reads the row the cursor is on into place <paramref name="slot"/>.</summary>
    public void Read(int slot)
    {
        readId(ref ids[slot]);
        foreach (var column in columns.Values) column.Read(slot);
    }

    /// <summary>A getter of <paramref name="column"/> serving the place <paramref name="slot"/> returns when called.</summary>
    public Delegate Getter(DataViewSchema.Column column, Func<int> slot) =>
        columns.TryGetValue(column.Index, out var buffer) ? buffer.Getter(slot)
            : throw new InvalidOperationException($"column '{column.Name}' is not buffered");

    public ValueGetter<DataViewRowId> IdGetter(Func<int> slot) => (ref DataViewRowId value) => value = ids[slot()];

    public void Dispose()
    {
        foreach (var column in columns.Values) column.Dispose();
    }

    private abstract class ColumnBuffer : IDisposable
    {
        public abstract void Read(int slot);
        public abstract Delegate Getter(Func<int> slot);
        public virtual void Dispose() { }
    }

    /// <summary>Values kept as the getter gives them: value types, immutable text, images (the upstream getter disposes a slot's old image when it refills it).</summary>
    private sealed class ValueColumnBuffer<T>(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<T> read = row.GetGetter<T>(column);
        private readonly T[] values = new T[capacity];

        public override void Read(int slot) => read(ref values[slot]);

        public override Delegate Getter(Func<int> slot) => (ValueGetter<T>)((ref T value) => value = values[slot()]);

        public override void Dispose()
        {
            foreach (var value in values.OfType<IDisposable>().Distinct()) value.Dispose();
        }
    }

    /// <summary>Vectors, copied in and out: neither the upstream getter nor the downstream reader may share a buffer with the slot.</summary>
    private sealed class VectorColumnBuffer<T>(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<VBuffer<T>> read = row.GetGetter<VBuffer<T>>(column);
        private readonly VBuffer<T>[] values = new VBuffer<T>[capacity];
        private VBuffer<T> scratch;

        public override void Read(int slot)
        {
            read(ref scratch);
            scratch.CopyTo(ref values[slot]);
        }

        public override Delegate Getter(Func<int> slot) => (ValueGetter<VBuffer<T>>)((ref VBuffer<T> value) => values[slot()].CopyTo(ref value));
    }
}
