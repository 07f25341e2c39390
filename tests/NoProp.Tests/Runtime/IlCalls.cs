using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace NoProp.Tests.Runtime;

/// <summary>The calls in an assembly's IL, method by method, as "Type::Name(parameter types)" keys.</summary>
internal static class IlCalls
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    private sealed class Names : ISignatureTypeProvider<string, object?>
    {
        public static readonly Names Instance = new();
        public string GetArrayType(string e, ArrayShape s) => e + "[" + new string(',', s.Rank - 1) + "]";
        public string GetByReferenceType(string e) => e + "&";
        public string GetFunctionPointerType(MethodSignature<string> s) => "fnptr";
        public string GetGenericInstantiation(string g, ImmutableArray<string> a) => g + "<" + string.Join(",", a) + ">";
        public string GetGenericMethodParameter(object? c, int i) => "!!" + i;
        public string GetGenericTypeParameter(object? c, int i) => "!" + i;
        public string GetModifiedType(string m, string u, bool r) => u;
        public string GetPinnedType(string e) => e;
        public string GetPointerType(string e) => e + "*";
        public string GetPrimitiveType(PrimitiveTypeCode t) => t.ToString();
        public string GetSZArrayType(string e) => e + "[]";
        public string GetTypeFromDefinition(MetadataReader r, TypeDefinitionHandle h, byte k) => FullName(r, h);
        public string GetTypeFromReference(MetadataReader r, TypeReferenceHandle h, byte k) => FullName(r, h);
        public string GetTypeFromSpecification(MetadataReader r, object? c, TypeSpecificationHandle h, byte k) => r.GetTypeSpecification(h).DecodeSignature(this, c);
    }

    private static string FullName(MetadataReader r, TypeDefinitionHandle h)
    {
        var t = r.GetTypeDefinition(h);
        var name = r.GetString(t.Name);
        var declaring = t.GetDeclaringType();
        return declaring.IsNil ? $"{r.GetString(t.Namespace)}.{name}" : $"{FullName(r, declaring)}/{name}";
    }

    private static string FullName(MetadataReader r, TypeReferenceHandle h)
    {
        var t = r.GetTypeReference(h);
        var name = r.GetString(t.Name);
        return t.ResolutionScope.Kind == HandleKind.TypeReference
            ? $"{FullName(r, (TypeReferenceHandle)t.ResolutionScope)}/{name}"
            : $"{r.GetString(t.Namespace)}.{name}";
    }

    private static string ParentName(MetadataReader r, EntityHandle parent) => parent.Kind switch
    {
        HandleKind.TypeReference => FullName(r, (TypeReferenceHandle)parent),
        HandleKind.TypeDefinition => FullName(r, (TypeDefinitionHandle)parent),
        HandleKind.TypeSpecification => r.GetTypeSpecification((TypeSpecificationHandle)parent).DecodeSignature(Names.Instance, null),
        _ => parent.Kind.ToString(),
    };

    /// <summary>"Type::Name(parameter types)" of a method; generic instantiations reduced to their definitions.</summary>, generic instantiations reduced to their definitions.
    public static string? Key(MetadataReader r, EntityHandle target)
    {
        switch (target.Kind)
        {
            case HandleKind.MethodDefinition:
            {
                var m = r.GetMethodDefinition((MethodDefinitionHandle)target);
                var sig = m.DecodeSignature(Names.Instance, null);
                return $"{FullName(r, m.GetDeclaringType())}::{r.GetString(m.Name)}({string.Join(",", sig.ParameterTypes)})";
            }
            case HandleKind.MemberReference:
            {
                var m = r.GetMemberReference((MemberReferenceHandle)target);
                if (m.GetKind() != MemberReferenceKind.Method) return null;
                var sig = m.DecodeMethodSignature(Names.Instance, null);
                var parent = ParentName(r, m.Parent);
                int lt = parent.IndexOf('<');
                if (lt >= 0) parent = parent[..lt];
                return $"{parent}::{r.GetString(m.Name)}({string.Join(",", sig.ParameterTypes)})";
            }
            case HandleKind.MethodSpecification:
                return Key(r, r.GetMethodSpecification((MethodSpecificationHandle)target).Method);
            default:
                return null;
        }
    }

    /// <summary>Every method body of the assembly with the keys of the methods it calls (call, callvirt, newobj, ldftn).</summary>
    public static IEnumerable<(string Method, List<string> Calls)> Bodies(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        var r = pe.GetMetadataReader();
        foreach (var h in r.MethodDefinitions)
        {
            var m = r.GetMethodDefinition(h);
            if (m.RelativeVirtualAddress == 0) continue;
            var body = pe.GetMethodBody(m.RelativeVirtualAddress);
            var calls = new List<string>();
            var il = body.GetILReader();
            while (il.RemainingBytes > 0)
            {
                short value = il.ReadByte();
                if (value == 0xFE) value = unchecked((short)(0xFE00 | il.ReadByte()));
                var op = OpCodesByValue[value];
                switch (op.OperandType)
                {
                    case OperandType.InlineNone: break;
                    case OperandType.ShortInlineBrTarget: case OperandType.ShortInlineI: case OperandType.ShortInlineVar: il.ReadByte(); break;
                    case OperandType.InlineVar: il.ReadInt16(); break;
                    case OperandType.InlineI8: case OperandType.InlineR: il.ReadInt64(); break;
                    case OperandType.InlineSwitch: int n = il.ReadInt32(); for (int i = 0; i < n; i++) il.ReadInt32(); break;
                    case OperandType.InlineMethod:
                        var token = il.ReadInt32();
                        if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj || op == OpCodes.Ldftn)
                            if (Key(r, MetadataTokens.EntityHandle(token)) is string key) calls.Add(key);
                        break;
                    default: il.ReadInt32(); break;
                }
            }
            yield return (Key(r, h)!, calls);
        }
    }
}
