using System.Buffers.Binary;
using System.Text;

namespace NoProp.Runtime.Native;

/// <summary>
/// The few parts of a little-endian ELF64 shared object that symbol versioning needs: the versions it needs from
/// other libraries (<c>.gnu.version_r</c>), the versions it defines (<c>.gnu.version_d</c>), and which dynamic
/// symbols of a given version its relocations bind. Read from the section headers; nothing is executed.
/// See docs/torchsharp-on-debian12.md.
/// </summary>
internal sealed class ElfImage
{
    private const uint ShtRela = 4, ShtDynamic = 6, ShtRel = 9, ShtDynsym = 11;
    private const uint ShtGnuVerdef = 0x6ffffffd, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;

    /// <summary>The flag that makes a missing version acceptable to the loader (VER_FLG_WEAK).</summary>
    public const ushort WeakFlag = 0x2;

    /// <summary>One needed version (an <c>Elf64_Vernaux</c> record) of one needed library.</summary>
    /// <param name="File">The library it is needed from, e.g. libstdc++.so.6.</param>
    /// <param name="Version">The version name, e.g. GLIBCXX_3.4.32.</param>
    /// <param name="Flags">vna_flags (<see cref="WeakFlag"/> set: the loader accepts its absence).</param>
    /// <param name="Index">vna_other: the index symbols of this version carry in <c>.gnu.version</c>.</param>
    /// <param name="FlagsOffset">Where vna_flags lies in the file.</param>
    public sealed record VersionNeed(string File, string Version, ushort Flags, ushort Index, int FlagsOffset)
    {
        public bool IsWeak => (Flags & WeakFlag) != 0;
    }

    private readonly byte[] bytes;
    private readonly Section[] sections;

    private readonly record struct Section(uint Type, long Offset, long Size, uint Link, long EntrySize);

    public ElfImage(byte[] bytes, string path)
    {
        this.bytes = bytes;
        Path = path;
        if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != 'E' || bytes[2] != 'L' || bytes[3] != 'F')
            throw new InvalidDataException($"{path}: not an ELF file");
        if (bytes[4] != 2 || bytes[5] != 1)
            throw new InvalidDataException($"{path}: not a little-endian 64-bit ELF file");
        long shoff = I64(0x28);
        int shentsize = U16(0x3A), shnum = U16(0x3C);
        if (shoff <= 0 || shnum == 0 || shentsize < 64 || shoff + (long)shnum * shentsize > bytes.Length)
            throw new InvalidDataException($"{path}: the ELF section headers are missing or truncated");
        sections = new Section[shnum];
        for (int i = 0; i < shnum; i++)
        {
            int h = checked((int)(shoff + (long)i * shentsize));
            sections[i] = new Section(U32(h + 4), I64(h + 0x18), I64(h + 0x20), U32(h + 0x28), I64(h + 0x38));
        }
    }

    public string Path { get; }

    public static ElfImage Read(string path) => new(File.ReadAllBytes(path), path);

    /// <summary>The libraries this object names as DT_NEEDED, in order.</summary>
    public IReadOnlyList<string> NeededLibraries()
    {
        var result = new List<string>();
        foreach (var s in sections.Where(s => s.Type == ShtDynamic))
        {
            long strings = sections[s.Link].Offset;
            for (long p = s.Offset; p + 16 <= s.Offset + s.Size; p += 16)
            {
                long tag = I64(At(p));
                if (tag == 0) break;                                   // DT_NULL
                if (tag == 1) result.Add(CString(strings + I64(At(p + 8))));   // DT_NEEDED
            }
        }
        return result;
    }

    /// <summary>Every version this object needs, by library.</summary>
    public IReadOnlyList<VersionNeed> VersionNeeds()
    {
        var result = new List<VersionNeed>();
        foreach (var s in sections.Where(s => s.Type == ShtGnuVerneed))
        {
            long strings = sections[s.Link].Offset;
            long off = s.Offset;
            while (true)
            {
                int count = U16(At(off + 2));
                string file = CString(strings + U32(At(off + 4)));
                long aux = off + U32(At(off + 8));
                for (int k = 0; k < count; k++)
                {
                    int a = At(aux);
                    result.Add(new VersionNeed(file, CString(strings + U32(a + 8)), U16(a + 4), U16(a + 6), a + 4));
                    uint nextAux = U32(a + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(At(off + 12));
                if (next == 0) break;
                off += next;
            }
        }
        return result;
    }

    /// <summary>Every version this object defines (for libstdc++: GLIBCXX_3.4, ..., CXXABI_1.3, ...).</summary>
    public IReadOnlySet<string> DefinedVersions()
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in sections.Where(s => s.Type == ShtGnuVerdef))
        {
            long strings = sections[s.Link].Offset;
            long off = s.Offset;
            while (true)
            {
                int count = U16(At(off + 6));
                long aux = off + U32(At(off + 12));
                if (count > 0) result.Add(CString(strings + U32(At(aux))));   // the first name is the version itself
                uint next = U32(At(off + 16));
                if (next == 0) break;
                off += next;
            }
        }
        return result;
    }

    /// <summary>
    /// The names of the dynamic symbols of version <paramref name="versionIndex"/> that a relocation binds: the
    /// symbols the loader must actually find. A version whose symbols are all unbound can be made weak safely.
    /// </summary>
    public IReadOnlyList<string> SymbolsBoundTo(ushort versionIndex)
    {
        int dynsym = Array.FindIndex(sections, s => s.Type == ShtDynsym);
        var versym = sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
        if (dynsym < 0 || versym.Size == 0) return [];
        var symbols = sections[dynsym];
        long strings = sections[symbols.Link].Offset;
        var bound = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var r in sections.Where(s => (s.Type == ShtRela || s.Type == ShtRel) && s.Link == dynsym))
        {
            long entry = r.EntrySize > 0 ? r.EntrySize : (r.Type == ShtRela ? 24 : 16);
            for (long p = r.Offset; p + entry <= r.Offset + r.Size; p += entry)
            {
                long symbol = (long)((ulong)I64(At(p + 8)) >> 32);   // ELF64_R_SYM
                if (symbol == 0) continue;
                if ((U16(At(versym.Offset + 2 * symbol)) & 0x7fff) != versionIndex) continue;
                bound.Add(CString(strings + U32(At(symbols.Offset + symbol * 24))));
            }
        }
        return [.. bound];
    }

    /// <summary>A copy of the file with <see cref="WeakFlag"/> set on the given needs; nothing else changes.</summary>
    public byte[] WithWeakVersions(IEnumerable<VersionNeed> needs)
    {
        var copy = (byte[])bytes.Clone();
        foreach (var need in needs)
            BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(need.FlagsOffset), (ushort)(need.Flags | WeakFlag));
        return copy;
    }

    private int At(long offset) =>
        offset >= 0 && offset < bytes.Length ? (int)offset : throw new InvalidDataException($"{Path}: an ELF offset points outside the file");

    private ushort U16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(offset));
    private uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset));
    private long I64(int offset) => BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(offset));

    private string CString(long offset)
    {
        int start = At(offset);
        int end = Array.IndexOf(bytes, (byte)0, start);
        if (end < 0) throw new InvalidDataException($"{Path}: an ELF string is not terminated");
        return Encoding.ASCII.GetString(bytes, start, end - start);
    }
}
