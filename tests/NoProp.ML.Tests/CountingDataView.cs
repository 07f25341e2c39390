using Microsoft.ML;
using Microsoft.ML.Data;

namespace NoProp.ML.Tests;

/// <summary>
/// A data view that counts how it is read: cursors opened, rows moved onto, getter calls per column. Put under an
/// expensive transform (LoadImages, say), the getter calls of its input column count that transform's work.
/// </summary>
internal sealed class CountingDataView(IDataView inner) : IDataView
{
    private readonly Dictionary<string, int> reads = [];

    public int CursorsOpened { get; private set; }
    public int RowsRead { get; private set; }
    public int Reads(string column) => reads.GetValueOrDefault(column);

    public DataViewSchema Schema => inner.Schema;
    public bool CanShuffle => inner.CanShuffle;
    public long? GetRowCount() => inner.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        CursorsOpened++;
        return new Cursor(this, inner.GetRowCursor(columnsNeeded, rand));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(CountingDataView view, DataViewRowCursor inner) : DataViewRowCursor
    {
        public override DataViewSchema Schema => inner.Schema;
        public override long Position => inner.Position;
        public override long Batch => inner.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => inner.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => inner.IsColumnActive(column);

        public override bool MoveNext()
        {
            if (!inner.MoveNext()) return false;
            view.RowsRead++;
            return true;
        }

        public override ValueGetter<T> GetGetter<T>(DataViewSchema.Column column)
        {
            var getter = inner.GetGetter<T>(column);
            return (ref T value) =>
            {
                view.reads[column.Name] = view.reads.GetValueOrDefault(column.Name) + 1;
                getter(ref value);
            };
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
