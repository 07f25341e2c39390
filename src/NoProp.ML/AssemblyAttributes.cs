using Microsoft.ML;
using NoProp.ML;

// The adapter compiles against publicized copies of these two assemblies (Publicize.targets); this tells the
// runtime to let it call their internal members, as ML.NET's own friend assemblies do.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

// How mlContext.Model.Load finds NoPropTransformer.Create: the zip names this assembly and the loader signature,
// ML.NET loads the assembly and scans it for this attribute. No registration call is needed.
[assembly: LoadableClass(typeof(NoPropTransformer), null, typeof(SignatureLoadModel), "NoProp", NoPropTransformer.LoaderSignature)]

namespace System.Runtime.CompilerServices
{
    /// <summary>
    /// Read by the CoreCLR (not by the compiler): code in an assembly carrying this attribute skips access checks
    /// against the named assembly. The runtime matches the attribute by name, so each assembly declares its own.
    /// </summary>
    [AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
    internal sealed class IgnoresAccessChecksToAttribute(string assemblyName) : Attribute
    {
        public string AssemblyName { get; } = assemblyName;
    }
}
