// publicizer <input.dll> <output.dll>
//
// Writes a copy of a .NET assembly in which every type, method and field is public. src/NoProp.ML compiles
// against such copies of Microsoft.ML.Core and Microsoft.ML.Data, because ML.NET keeps everything a savable
// component needs (ModelSaveContext's members, ModelLoadContext, VersionInfo, LoadableClassAttribute, the
// SchemaShape.Column constructor) internal. At run time the real assemblies are loaded, and the adapter's
// [assembly: IgnoresAccessChecksTo(...)] attributes tell the runtime to skip the access checks. The copies
// are compile-time references only: method bodies are kept but never run, and the strong-name signature
// is left invalid on purpose.
using Mono.Cecil;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: publicizer <input.dll> <output.dll>");
    return 2;
}
var (input, output) = (args[0], args[1]);
var resolver = new DefaultAssemblyResolver();
resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(input))!);
using (var assembly = AssemblyDefinition.ReadAssembly(input, new ReaderParameters { AssemblyResolver = resolver }))
{
    foreach (var type in assembly.MainModule.GetTypes())
    {
        if (type.IsNested) type.IsNestedPublic = true; else type.IsPublic = true;
        foreach (var method in type.Methods) method.IsPublic = true;
        // An event's backing field has the event's name; making it public too would make every use of the
        // event ambiguous to the compiler, so those fields stay as they are.
        var eventNames = type.Events.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var field in type.Fields)
            if (!eventNames.Contains(field.Name)) field.IsPublic = true;
    }
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
    // Write beside and rename, so a parallel build never reads a half-written reference.
    var temporary = output + "." + Environment.ProcessId + ".tmp";
    assembly.Write(temporary);
    File.Move(temporary, output, overwrite: true);
}
return 0;
