using System.CommandLine;
using RlMixup.Engine.Display;
using RlMixup.Engine.Runs;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Commands;

/// <summary>
/// `resume RUN_DIR`: rebuilds the run's specification and dataset from its config.json, restores the
/// last complete checkpoint (an epoch's end, or the step where Ctrl-C stopped the run), truncates
/// metrics.jsonl to the last finished epoch and trains on to the configured number of epochs.
/// </summary>
public static class ResumeCommand
{
    public static Command Create()
    {
        var cmd = new Command("resume", "Continue an interrupted run from its last checkpoint: an epoch's end, or the step Ctrl-C stopped it after (bit for bit as if never stopped)");
        var folder = new Argument<string>("RUN_DIR") { Description = "the run folder (holds config.json and the checkpoint)" };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or auto (default: the device the run was started on)" };
        device.AcceptOnlyFromAmong(Backends.DeviceNames);
        var noTf32 = TrainCommands.NoTf32Option();
        var noLive = TrainCommands.NoLiveOption();
        var noTensorBoard = TrainCommands.NoTensorBoardOption();
        cmd.Arguments.Add(folder);
        cmd.Options.Add(noTensorBoard);
        cmd.Options.Add(device);
        cmd.Options.Add(noTf32);
        cmd.Options.Add(noLive);
        cmd.SetAction(r => Resume(r.GetValue(folder)!, r.GetValue(noLive), r.GetValue(device), r.GetValue(noTf32) ? false : null, !r.GetValue(noTensorBoard)));
        return cmd;
    }

    /// <summary>
    /// Resumes the run in <paramref name="folder"/> on <paramref name="device"/>, by default the device
    /// recorded in its config.json (a run continues bit for bit only on the kind of device it started on),
    /// with TF32 as recorded there unless <paramref name="tf32"/> says otherwise. Returns 0 when the run
    /// reached its end, 130 when a signal stopped it again.
    /// </summary>
    public static int Resume(string folder, bool plain, string? device = null, bool? tf32 = null, bool tensorBoard = true)
    {
        var (spec, data) = Load(folder);
        spec = spec with { Device = spec.Device with { Name = device ?? spec.Device.Name, Tf32 = tf32 ?? spec.Device.Tf32 } };
        using var backend = RunFactory.Backend(spec, Console.Out);
        try
        {
            return RunWatcher.Run(folder, plain, (log, onStep, stop) =>
            {
                var run = new TrainingRun(backend, data, spec, folder, log) { Progress = onStep, Stop = stop, TensorBoard = tensorBoard };
                run.Resume();
                return run.Interrupted;
            }, cpu: backend is Core.Cpu.CpuBackend);
        }
        catch (InvalidDataException e)
        {
            throw new CliException($"resume {folder}: {e.Message}");
        }
    }

    /// <summary>The specification and dataset recorded in folder/config.json; a missing or unreadable run is a <see cref="CliException"/>.</summary>
    public static (RunSpec Spec, Data.Dataset Data) Load(string folder)
    {
        var run = new RunFolder(folder);
        var spec = run.ReadSpec("resume");
        try
        {
            if (run.CheckpointEpoch == null)
                throw new CliException($"resume {folder}: no checkpoint ({Trainer.StateFile}); the run ended before its first epoch did, start it again");
            return (spec, RunFactory.Data(spec));
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or ArgumentException)
        {
            throw new CliException($"resume {folder}: {e.Message}");
        }
    }
}
