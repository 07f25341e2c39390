using TorchSharp;
using static TorchSharp.torch;

namespace NoProp.Runtime;

/// <summary>
/// Tensor arithmetic whose native Scalars stay reachable until libtorch has returned.
/// <para>
/// TorchSharp turns every number in an operation into a native <see cref="Scalar"/>: the visible ones (<c>x * 0.5</c>,
/// <c>1 - x</c>, <c>alpha:</c>) and hidden ones (<c>a + b</c> passes alpha = 1, <c>x.square()</c> the exponent 2), and
/// leaves them to the finalizer. Once the Scalar's handle has been read, the JIT no longer reports the object as alive,
/// so a garbage collection that marks while libtorch is inside the operation (a background GC's final phase, or any
/// other thread's collection) can finalize it mid-call: libtorch then reads freed memory and fails with
/// "Expected false to be true, but got false" or "Unknown scalar type", rarely and at random (it stopped a full MNIST
/// run after ~1,240 steps). The helpers below pass Scalars that are held: static ones for constants, and for other
/// values a Scalar disposed after the call, which keeps it alive until then.
/// </para>
/// <para>
/// Every number goes through here (or through a <see cref="Scalar"/> the caller holds); <c>ScalarUseTests</c> scans
/// NoProp's IL for the TorchSharp calls that create Scalars implicitly, so none comes back, and
/// <c>ScalarLifetimeTests</c> trains under constant collections. Left inside TorchSharp, out of our reach: its
/// BatchNorm's <c>num_batches_tracked.add_(1)</c> in training (a one-element add) and <c>softplus</c>'s β and threshold
/// (NoProp-CT's learnable schedule, tensors of 32 or B elements). <see cref="Methods.HeldScalarOptimizers"/> replaces
/// TorchSharp's Adam and AdamW steps.
/// </para>
/// </summary>
public static class HeldScalars
{
    /// <summary>0 (an int).</summary>
    public static Scalar Zero { get; } = 0.ToScalar();

    /// <summary>1 (an int, as TorchSharp's own <c>add(Tensor)</c> passes it).</summary>
    public static Scalar One { get; } = 1.ToScalar();

    /// <summary>2 (an int, as TorchSharp's own <c>square()</c> passes it).</summary>
    public static Scalar Two { get; } = 2.ToScalar();

    /// <summary>a + b (<c>a + b</c> in TorchSharp, without its implicit alpha).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a += b in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>a + α·b.</summary>
    public static Tensor PlusScaled(this Tensor a, Tensor b, double alpha)
    {
        using var s = alpha.ToScalar();
        return a.add(b, s);
    }

    /// <summary>a += α·b in place.</summary>
    public static Tensor PlusScaledInPlace(this Tensor a, Tensor b, double alpha)
    {
        using var s = alpha.ToScalar();
        return a.add_(b, s);
    }

    /// <summary>a + c.</summary>
    public static Tensor Plus(this Tensor a, double c)
    {
        using var s = c.ToScalar();
        return a.add(s, One);
    }

    /// <summary>a += c in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, double c)
    {
        using var s = c.ToScalar();
        return a.add_(s, One);
    }

    /// <summary>c − a (<c>c - a</c> in TorchSharp: −a + c).</summary>
    public static Tensor SubtractedFrom(this Tensor a, double c)
    {
        using var negated = a.negative();
        using var s = c.ToScalar();
        return negated.add(s, One);
    }

    /// <summary>c·a.</summary>
    public static Tensor Times(this Tensor a, double c)
    {
        using var s = c.ToScalar();
        return a.mul(s);
    }

    /// <summary>a ·= c in place.</summary>
    public static Tensor TimesInPlace(this Tensor a, double c)
    {
        using var s = c.ToScalar();
        return a.mul_(s);
    }

    /// <summary>a / c.</summary>
    public static Tensor DividedBy(this Tensor a, double c)
    {
        using var s = c.ToScalar();
        return a.div(s);
    }

    /// <summary>Σ wᵢ·tᵢ, added left to right (the order <c>t1 * w1 + t2 * w2 + …</c> evaluates in).</summary>
    public static Tensor WeightedSum(params (Tensor Tensor, double Weight)[] terms)
    {
        if (terms.Length == 0) throw new ArgumentException("no terms", nameof(terms));
        var sum = terms[0].Tensor.Times(terms[0].Weight);
        for (int i = 1; i < terms.Length; i++)
        {
            using var term = terms[i].Tensor.Times(terms[i].Weight);
            sum = sum.Then(s => s.Plus(term));
        }
        return sum;
    }

    /// <summary>a² (TorchSharp's <c>square()</c>, <c>pow(2)</c>, with a held exponent).</summary>
    public static Tensor Squared(this Tensor a) => a.pow(Two);

    /// <summary>A vector of <paramref name="size"/> copies of <paramref name="value"/> (<c>full(size, value)</c>).</summary>
    public static Tensor Full(long size, double value, Device? device = null)
    {
        using var s = value.ToScalar();
        return full(size, s, device: device);
    }

    /// <summary>A Scalar of <paramref name="value"/> for a call that takes one; dispose it after the call (<c>using</c>).</summary>
    public static Scalar Hold(double value) => value.ToScalar();
}
