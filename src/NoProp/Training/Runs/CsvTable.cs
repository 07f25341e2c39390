using System.Globalization;
using CsvHelper;
using CsvHelper.Configuration;

namespace NoProp.Training.Runs;

/// <summary>
/// The run folder's CSV files through CsvHelper: RFC 4180 quoting (a field holding a comma, a quote or a line break is
/// quoted, and read back whole), invariant culture, '\n' line ends, a header row.
/// </summary>
public static class CsvTable
{
    private static readonly CsvConfiguration Configuration = new(CultureInfo.InvariantCulture) { NewLine = "\n" };

    /// <summary>The header and rows as CSV text.</summary>
    public static string Format(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        using (var csv = new CsvWriter(text, Configuration))
        {
            WriteRow(csv, header);
            foreach (var row in rows)
            {
                if (row.Count != header.Count) throw new ArgumentException($"a row of {row.Count} fields under a header of {header.Count}");
                WriteRow(csv, row);
            }
        }
        return text.ToString();
    }

    /// <summary>One CSV line without its line end (for files appended to a row at a time, such as metrics.csv).</summary>
    public static string Row(IReadOnlyList<string> fields)
    {
        using var text = new StringWriter(CultureInfo.InvariantCulture);
        using (var csv = new CsvWriter(text, Configuration)) WriteRow(csv, fields);
        var line = text.ToString();
        return line[..^Configuration.NewLine.Length];
    }

    private static void WriteRow(CsvWriter csv, IReadOnlyList<string> fields)
    {
        foreach (var field in fields) csv.WriteField(field);
        csv.NextRecord();
    }

    /// <summary>Writes a whole file (through a temporary file, so a reader never sees half of it).</summary>
    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows) =>
        AtomicFile.WriteAllText(path, Format(header, rows));

    /// <summary>Reads a file written by <see cref="Write"/> (or any RFC 4180 file): its header and rows, each as long as the header.</summary>
    public static (string[] Header, List<string[]> Rows) Read(string path)
    {
        using var reader = new StreamReader(path);
        using var parser = new CsvParser(reader, new CsvConfiguration(CultureInfo.InvariantCulture) { IgnoreBlankLines = true });
        string[]? header = null;
        var rows = new List<string[]>();
        try
        {
            while (parser.Read())
            {
                var record = parser.Record!;
                if (header is null) { header = record; continue; }
                if (record.Length != header.Length)
                    throw new CsvFormatException($"{path}: line {parser.RawRow} has {record.Length} columns, the header {header.Length}");
                rows.Add(record);
            }
        }
        catch (CsvHelperException e)
        {
            throw new CsvFormatException($"{path}: {e.Message.Split('\n')[0]}");
        }
        return (header ?? throw new CsvFormatException($"{path}: empty file"), rows);
    }

    /// <summary>Invariant-culture text of a number, as the run folder's files write it.</summary>
    public static string Number(double value, string format = "R") => value.ToString(format, CultureInfo.InvariantCulture);
}

/// <summary>A CSV file that cannot be read as a table; the message names the file.</summary>
public sealed class CsvFormatException(string message) : FormatException(message);
