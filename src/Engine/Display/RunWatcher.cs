using RlMixup.Engine.Training;

namespace RlMixup.Engine.Display;

/// <summary>
/// Runs a training command under the live panel or with plain progress lines, and with Ctrl-C
/// wired to a clean stop. The exit code is 0 for a run that went to its end and 130 (128 + SIGINT,
/// the shell's convention) for one stopped by a signal after writing its checkpoint.
/// </summary>
public static class RunWatcher
{
    public const int InterruptedExitCode = 130;

    /// <param name="folder">The run folder, shown on the panel.</param>
    /// <param name="plain">--no-live: plain lines even on a terminal.</param>
    /// <param name="train">Runs the training with the given output, per-step callback and stop token; returns true when it was interrupted.</param>
    /// <param name="cpu">The run is on the CPU: an estimate of more than a day is said loudly.</param>
    public static int Run(string folder, bool plain, Func<TextWriter, Action<StepProgress>, CancellationToken, bool> train, bool cpu = false)
    {
        bool live = !plain && LiveTrainingDisplay.Available();
        var display = live ? new LiveTrainingDisplay(folder, cpu) : null;
        var stderr = Console.Error;
        using var stop = new StopSignal(
            onFirst: () =>
            {
                if (display != null) display.Stopping();
                else stderr.WriteLine("stopping after the current step (Ctrl-C again quits at once)");
            },
            beforeExit: () => { if (display != null) Console.Out.Write("\u001b[?25h\n"); });
        bool interrupted = display != null
            ? display.Run((log, onStep) => train(log, onStep, stop.Token))
            : train(Console.Out, new PlainProgress(Console.Out, cpu).OnStep, stop.Token);
        return interrupted ? InterruptedExitCode : 0;
    }
}
