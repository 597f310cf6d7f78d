using RlMixup.Core.Cuda.Native;

namespace RlMixup.Core.Cuda;

/// <summary>
/// One kernel argument with the C type it stands for: a device pointer to float, int or unsigned
/// char, a float, an int, or a size_t. Kept as 64 raw bits so that a launch is a flat list.
/// </summary>
public readonly record struct KernelArg(KernelParamKind Kind, ulong Bits)
{
    public static KernelArg F32Ptr(CUdeviceptr p) => new(KernelParamKind.F32Ptr, p.Value);
    public static KernelArg I32Ptr(CUdeviceptr p) => new(KernelParamKind.I32Ptr, p.Value);
    public static KernelArg U8Ptr(CUdeviceptr p) => new(KernelParamKind.U8Ptr, p.Value);
    public static KernelArg F32(float v) => new(KernelParamKind.F32, BitConverter.SingleToUInt32Bits(v));
    public static KernelArg I32(int v) => new(KernelParamKind.I32, unchecked((uint)v));
    public static KernelArg U64(long v) => new(KernelParamKind.U64, checked((ulong)v));

    public static implicit operator KernelArg(float v) => F32(v);
    public static implicit operator KernelArg(int v) => I32(v);
    public static implicit operator KernelArg(long v) => U64(v);

    public override string ToString() => Kind switch
    {
        KernelParamKind.F32 => $"float {BitConverter.UInt32BitsToSingle((uint)Bits)}",
        KernelParamKind.I32 => $"int {unchecked((int)(uint)Bits)}",
        KernelParamKind.U64 => $"size_t {Bits}",
        _ => $"{Kind} 0x{Bits:x}",
    };
}

/// <summary>
/// Checks a launch against the kernel's declared parameters (<see cref="KernelCatalog"/>) and packs
/// it: the number of arguments, each one's C type, and no null device pointer. A mismatch is a bug
/// in the caller, reported before the driver would read garbage.
/// </summary>
public static class KernelLaunch
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the kernel and the parameter when the arguments do not fit.</summary>
    public static void Validate(KernelInfo kernel, ReadOnlySpan<KernelArg> args)
    {
        var ps = kernel.Parameters;
        if (args.Length != ps.Count)
            throw new ArgumentException($"{kernel.Entry}: {args.Length} arguments for {ps.Count} parameters ({string.Join(", ", ps.Select(p => p.Name))})");
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i].Kind != ps[i].Kind)
                throw new ArgumentException($"{kernel.Entry}: parameter {i} '{ps[i].Name}' is {ps[i].Kind}, got {args[i]}");
            if (ps[i].Kind is KernelParamKind.F32Ptr or KernelParamKind.I32Ptr or KernelParamKind.U8Ptr && args[i].Bits == 0)
                throw new ArgumentException($"{kernel.Entry}: parameter {i} '{ps[i].Name}' is a null device pointer");
        }
    }

    /// <summary>The validated arguments as the driver's kernelParams buffer (pointers and size_t 8 bytes, float and int 4).</summary>
    public static KernelArgs Pack(KernelInfo kernel, ReadOnlySpan<KernelArg> args, KernelArgs? reuse = null)
    {
        Validate(kernel, args);
        var packed = reuse ?? new KernelArgs();
        packed.Clear();
        foreach (var a in args)
        {
            switch (a.Kind)
            {
                case KernelParamKind.F32: packed.Add(BitConverter.UInt32BitsToSingle((uint)a.Bits)); break;
                case KernelParamKind.I32: packed.Add(unchecked((int)(uint)a.Bits)); break;
                default: packed.Add(a.Bits); break;
            }
        }
        return packed;
    }
}
