#!/usr/bin/env python3
"""Plants known bugs in the CUDA backend, one at a time, and shows which test catches each.

Each entry names a file, a replacement that introduces the bug, and the tests that must fail; the
script applies it, builds, runs those tests, prints the failures with the software device's
violations and the self-test's FAIL rows, and restores the file. Run it after changing the
software device or the backend's checks, to see that they still catch what they are meant to:

  python3 scripts/planted_bugs.py            # all
  python3 scripts/planted_bugs.py 3 5        # the bugs by index
"""
import subprocess, sys, os, re
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
bugs = [
 ("a wrong enum value", "src/Core/Cuda/Native/CuDnnTypes.cs", "CUDNN_FMA_MATH = 3,", "CUDNN_FMA_MATH = 4,",
  "FullyQualifiedName~CudaAbiTests.EveryNativeEnumValueMatchesTheHeaders"),
 ("two swapped arguments in one binding", "src/Core/Cuda/Native/CuDnn.cs",
  "int padH, int padW, int u, int v, int dilationH, int dilationW,",
  "int u, int v, int padH, int padW, int dilationH, int dilationW,",
  "FullyQualifiedName~CudaAbiTests.EveryLibraryImportMatchesTheHeaders"),
 ("a kernel argument packed with the wrong size", "src/Core/Cuda/KernelLaunch.cs",
  "default: packed.Add(a.Bits); break;", "case KernelParamKind.U64: packed.Add((uint)a.Bits); break;\n                default: packed.Add(a.Bits); break;",
  "FullyQualifiedName~SoftwareDeviceEndToEndTests.EverySelftestRowPasses"),
 ("a missing stream synchronization before a host read", "src/Core/Cuda/CudaBackend.cs",
  "        DeviceMemory.CopyToHostAsync(_staging, 0, dst.Length, Ptr(src), _stream);\n        _stream.Synchronize();",
  "        DeviceMemory.CopyToHostAsync(_staging, 0, dst.Length, Ptr(src), _stream);",
  "FullyQualifiedName~SoftwareDeviceEndToEndTests.EverySelftestRowPasses"),
 ("a workspace one byte short", "src/Core/Cuda/CudnnConvolutions.cs",
  "plan.WorkspaceBytes = WorkspaceSize(key.Direction, plan);", "plan.WorkspaceBytes = WorkspaceSize(key.Direction, plan); if (plan.WorkspaceBytes > 0) plan.WorkspaceBytes--;",
  "FullyQualifiedName~SoftwareDeviceEndToEndTests.EverySelftestRowPasses"),
 ("a read past an allocation", "src/Core/Cuda/CudaBackend.cs",
  "DeviceMemory.CopyDeviceToDevice(Ptr(dst), Ptr(src), (long)src.Length * sizeof(float), _stream);",
  "DeviceMemory.CopyDeviceToDevice(Ptr(dst), Ptr(src), (long)src.Length * sizeof(float) + 4, _stream);",
  "FullyQualifiedName~SoftwareDeviceEndToEndTests.EverySelftestRowPasses"),
 ("the ALLOW_CONVERSION math type, and Pick's refusal of it removed too", "src/Core/Cuda/CudnnConvPlanning.cs",
  "tf32 ? CudnnMathType.CUDNN_DEFAULT_MATH : CudnnMathType.CUDNN_FMA_MATH;\n", "tf32 ? CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CudnnMathType.CUDNN_FMA_MATH;\n",
  "FullyQualifiedName~SoftwareDeviceEndToEndTests.EverySelftestRowPasses"),
 ("the ALLOW_CONVERSION math type", "src/Core/Cuda/CudnnConvPlanning.cs",
  "tf32 ? CudnnMathType.CUDNN_DEFAULT_MATH : CudnnMathType.CUDNN_FMA_MATH;", "tf32 ? CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : CudnnMathType.CUDNN_FMA_MATH;",
  "FullyQualifiedName~SoftwareDeviceEndToEndTests.EverySelftestRowPasses|FullyQualifiedName~CudnnLayerTests.MathTypeFollowsTheTf32Flag"),
]
which = sys.argv[1:] and [int(a) for a in sys.argv[1:]] or range(len(bugs))
for i in which:
    name, path, old, new, filt = bugs[i]
    src = open(path).read()
    assert old in src, (name, old)
    changed = src.replace(old, new, 1)
    if "refusal of it removed" in name:
        refusal = 'r.MathType == CudnnMathType.CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION ? $"{r.MathType} (converts float32 inputs to fp16)"\n                : '
        assert refusal in changed
        changed = changed.replace(refusal, "")
    open(path, 'w').write(changed)
    try:
        b = subprocess.run(["dotnet", "build", "tests", "-c", "Release"], capture_output=True, text=True)
        if "0 Error(s)" not in b.stdout:
            print(f"== {i} {name}: BUILD FAILED\n" + "\n".join(l for l in b.stdout.splitlines() if " error " in l)[:2000]); continue
        t = subprocess.run(["dotnet", "test", "tests", "-c", "Release", "--no-build", "--filter", filt], capture_output=True, text=True)
        lines = t.stdout.splitlines()
        failed = [l.strip() for l in lines if l.strip().startswith("Failed ") and "[" in l]
        msgs = []
        for j, l in enumerate(lines):
            if "Error Message:" in l: msgs.append(" ".join(x.strip() for x in lines[j+1:j+4])[:400])
        summary = [l for l in lines if l.startswith("Failed!") or l.startswith("Passed!")]
        fails = [l.strip()[:160] for l in lines if l.rstrip().endswith("FAIL") or " FAIL  " in l]
        viol = [l.strip()[:300] for l in lines if "software device reported" in l or "rlmixup software device:" in l]
        print(f"== {i} {name} ({path})\n   {summary}\n   failed: {failed}\n   first message: {msgs[:1]}\n   FAIL rows: {fails[:6]}\n   violations: {viol[:3]}", flush=True)
    finally:
        open(path, 'w').write(src)
subprocess.run(["dotnet", "build", "tests", "-c", "Release"], capture_output=True, text=True)
print("restored and rebuilt")
