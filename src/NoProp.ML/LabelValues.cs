using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Data.IO;
using Microsoft.ML.Runtime;

namespace NoProp.ML;

/// <summary>
/// The training label's key values in their original type (text, UInt32, Int32, Single, …), as ML.NET's multiclass
/// trainers carry them: they become the <c>KeyValues</c> of PredictedLabel and the <c>TrainingLabelValues</c> of Score
/// (and its <c>SlotNames</c> when they are text), so that <c>MapKeyToValue("PredictedLabel")</c> gives back the user's
/// labels. Saved in the model with ML.NET's own typed value codec (BinarySaver), as its LabelNameBindableMapper does.
/// </summary>
internal sealed class LabelValues
{
    private static readonly MethodInfo ReadMethod = typeof(LabelValues).GetMethod(nameof(Read), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo AddMethod = typeof(LabelValues).GetMethod(nameof(AddTyped), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly MethodInfo WriteMethod = typeof(LabelValues).GetMethod(nameof(WriteTyped), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly MethodInfo EqualsMethod = typeof(LabelValues).GetMethod(nameof(EqualsTyped), BindingFlags.NonPublic | BindingFlags.Instance)!;

    private LabelValues(VectorDataViewType type, object values, string[] names)
    {
        Type = type;
        Values = values;
        Names = names;
    }

    /// <summary>Vector&lt;T, K&gt;: the annotation's type.</summary>
    public VectorDataViewType Type { get; }

    /// <summary>A dense <c>VBuffer&lt;T&gt;</c> of K values.</summary>
    public object Values { get; }

    /// <summary>The values as invariant-culture text (the class names of the model's configuration).</summary>
    public string[] Names { get; }

    public int Count => Type.Size;

    public bool IsText => Type.ItemType is TextDataViewType;

    /// <summary>The key values of a label column of <paramref name="count"/> keys; null when it has none of that count.</summary>
    public static LabelValues? Of(DataViewSchema.Column label, int count)
    {
        var annotation = label.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (annotation?.Type is not VectorDataViewType type || type.Size != count) return null;
        return (LabelValues)ReadMethod.MakeGenericMethod(type.ItemType.RawType).Invoke(null, BindingFlags.DoNotWrapExceptions, null, [label.Annotations, annotation.Value, type], null)!;
    }

    /// <summary>Text values (models saved before typed values were stored held only class names).</summary>
    public static LabelValues FromNames(IReadOnlyList<string> names)
    {
        var values = names.Select(n => n.AsMemory()).ToArray();
        return new LabelValues(new VectorDataViewType(TextDataViewType.Instance, values.Length),
            new VBuffer<ReadOnlyMemory<char>>(values.Length, values), names.ToArray());
    }

    private static LabelValues Read<T>(DataViewSchema.Annotations annotations, DataViewSchema.Column column, VectorDataViewType type)
    {
        VBuffer<T> values = default;
        annotations.GetValue(column.Name, ref values);
        var dense = values.DenseValues().ToArray();
        return new LabelValues(type, new VBuffer<T>(dense.Length, dense), dense.Select(Format).ToArray());
    }

    private static string Format<T>(T value) => value switch
    {
        ReadOnlyMemory<char> text => text.ToString(),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? "",
    };

    /// <summary>Adds the values as annotation <paramref name="kind"/>.</summary>
    public void AddTo(DataViewSchema.Annotations.Builder builder, string kind) =>
        AddMethod.MakeGenericMethod(Type.ItemType.RawType).Invoke(this, BindingFlags.DoNotWrapExceptions, null, [builder, kind], null);

    private void AddTyped<T>(DataViewSchema.Annotations.Builder builder, string kind)
    {
        var values = (VBuffer<T>)Values;
        builder.Add(kind, Type, (ref VBuffer<T> value) => values.CopyTo(ref value));
    }

    /// <summary>True when <paramref name="other"/> holds the same values of the same type.</summary>
    public bool SameAs(LabelValues other) =>
        other.Type.Equals(Type) && (bool)EqualsMethod.MakeGenericMethod(Type.ItemType.RawType).Invoke(this, BindingFlags.DoNotWrapExceptions, null, [other], null)!;

    private bool EqualsTyped<T>(LabelValues other) =>
        ((VBuffer<T>)Values).DenseValues().SequenceEqual(((VBuffer<T>)other.Values).DenseValues(),
            typeof(T) == typeof(ReadOnlyMemory<char>) ? (IEqualityComparer<T>)(object)TextComparer.Instance : EqualityComparer<T>.Default);

    private sealed class TextComparer : IEqualityComparer<ReadOnlyMemory<char>>
    {
        public static readonly TextComparer Instance = new();
        public bool Equals(ReadOnlyMemory<char> x, ReadOnlyMemory<char> y) => x.Span.SequenceEqual(y.Span);
        public int GetHashCode(ReadOnlyMemory<char> obj) => obj.Length;
    }

    /// <summary>Writes type and values with ML.NET's codec.</summary>
    public void Write(IHostEnvironment environment, Stream stream) =>
        WriteMethod.MakeGenericMethod(Type.ItemType.RawType).Invoke(this, BindingFlags.DoNotWrapExceptions, null, [environment, stream], null);

    private void WriteTyped<T>(IHostEnvironment environment, Stream stream)
    {
        var values = (VBuffer<T>)Values;
        var saver = new BinarySaver(environment, new BinarySaver.Arguments());
        if (!saver.TryWriteTypeAndValue(stream, Type, ref values, out _))
            throw new InvalidOperationException($"NoProp: cannot save label values of type {Type.ItemType}");
    }

    public static LabelValues Load(IHostEnvironment environment, Stream stream)
    {
        var saver = new BinarySaver(environment, new BinarySaver.Arguments());
        if (!saver.TryLoadTypeAndValue(stream, out var type, out var value) || type is not VectorDataViewType vector || value is null || vector.Size == 0)
            throw new InvalidDataException("the NoProp model's label values are unreadable");
        var read = typeof(LabelValues).GetMethod(nameof(FromBuffer), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(vector.ItemType.RawType);
        return (LabelValues)read.Invoke(null, BindingFlags.DoNotWrapExceptions, null, [vector, value], null)!;
    }

    private static LabelValues FromBuffer<T>(VectorDataViewType type, object value)
    {
        var dense = ((VBuffer<T>)value).DenseValues().ToArray();
        return new LabelValues(type, new VBuffer<T>(dense.Length, dense), dense.Select(Format).ToArray());
    }
}
