using System.Diagnostics;
using System.Text;
using RlMixup.Engine.Training;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RlMixup.Engine.Display;

/// <summary>
/// The live panel of an interactive terminal (Spectre.Console): epoch, steps, running loss, lr, the
/// last test top-1, images/s, the run folder and the epoch's action histogram as a bar chart. The
/// trainer hands over a small snapshot after every step; the panel is redrawn at most four times a
/// second, on the training thread, so it costs one clock read per step otherwise. Lines the run
/// writes (the per-epoch summaries, the stop line) are printed above the panel.
/// </summary>
public sealed class LiveTrainingDisplay(string folder, bool cpu = false)
{
    private readonly RunClock _runClock = new();
    private string? _estimate;
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _lastDraw = -Interval;
    private StepProgress? _last;
    private LiveDisplayContext? _context;
    private volatile bool _stopping;

    /// <summary>True when stdout is a terminal that can redraw in place (not redirected, not TERM=dumb, not CI).</summary>
    public static bool Available()
    {
        if (Console.IsOutputRedirected) return false;
        if (string.Equals(Environment.GetEnvironmentVariable("TERM"), "dumb", StringComparison.Ordinal)) return false;
        var caps = AnsiConsole.Profile.Capabilities;
        return caps.Ansi && caps.Interactive;
    }

    /// <summary>Says on the panel that a stop was requested (safe from any thread; shown at the next redraw).</summary>
    public void Stopping()
    {
        _stopping = true;
    }

    /// <summary>Runs <paramref name="train"/> under the panel; it gets the writer for its lines and the per-step callback.</summary>
    public T Run<T>(Func<TextWriter, Action<StepProgress>, T> train) =>
        AnsiConsole.Live(Render(null)).AutoClear(false).Overflow(VerticalOverflow.Ellipsis).Start(ctx =>
        {
            _context = ctx;
            try { return train(new LineWriter(this), OnStep); }
            finally
            {
                if (_last != null) ctx.UpdateTarget(Render(_last));
                _context = null;
            }
        });

    private void OnStep(StepProgress p)
    {
        _last = p;
        if (_runClock.Step(p) is { } total) _estimate = RunClock.Announce(total, cpu);
        var now = _clock.Elapsed;
        if (now - _lastDraw < Interval && p.Step != p.StepsPerEpoch) return;
        _lastDraw = now;
        _context?.UpdateTarget(Render(p));
    }

    private void WriteLine(string line)
    {
        AnsiConsole.Write(new Text(line + "\n"));
        if (_last != null) _context?.UpdateTarget(Render(_last));
    }

    private IRenderable Render(StepProgress? p)
    {
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        void Row(string name, string value) => grid.AddRow(new Text(name, new Style(Color.Grey)), new Text(value));
        Row("run folder", Path.GetFullPath(folder));
        if (p == null) Row("status", "starting");
        else
        {
            int width = 30, filled = (int)((long)width * p.Step / p.StepsPerEpoch);
            Row("epoch", $"{p.Epoch}/{p.Epochs}");
            Row("step", $"{new string('█', filled)}{new string('░', width - filled)} {p.Step}/{p.StepsPerEpoch}   global step {p.GlobalStep}/{(long)p.Epochs * p.StepsPerEpoch}");
            Row("train loss", $"{p.TrainLoss:F4} (epoch mean so far)");
            Row("lr", $"{p.LearningRate:F5}");
            Row("test top-1", double.IsNaN(p.LastTestTop1) ? "-" : $"{100 * p.LastTestTop1:F2}% (last epoch)");
            Row("images/s", $"{p.ImagesPerSecond:F0}");
            Row("time", _runClock.Left is { } left ? $"{RunClock.Format(_runClock.Elapsed)} elapsed, about {RunClock.Format(left)} left" : RunClock.Format(_runClock.Elapsed));
            if (_estimate != null)
                grid.AddRow(new Text("estimate", new Style(Color.Grey)), new Text(_estimate, new Style(_estimate.StartsWith("WARNING", StringComparison.Ordinal) ? Color.Yellow : Color.Default)));
        }
        if (_stopping) grid.AddRow(new Text("status", new Style(Color.Grey)), new Text("stopping after this step (Ctrl-C again quits at once)", new Style(Color.Yellow)));
        var rows = new List<IRenderable> { grid };
        if (p != null && p.ActionHistogram.Any(c => c > 0))
        {
            var chart = new BarChart().Width(60).Label("actions this epoch (threshold percentile 0..99)");
            for (int a = 0; a < p.ActionHistogram.Length; a++) chart.AddItem($"{a}", p.ActionHistogram[a], Color.SteelBlue);
            rows.Add(chart);
        }
        return new Panel(new Rows(rows)).Header("rlmixup training").Border(BoxBorder.Rounded);
    }

    /// <summary>The run's text output, one complete line at a time, printed above the panel.</summary>
    private sealed class LineWriter(LiveTrainingDisplay display) : TextWriter
    {
        private readonly StringBuilder _line = new();
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                display.WriteLine(_line.ToString().TrimEnd('\r'));
                _line.Clear();
            }
            else _line.Append(value);
        }

        public override void Write(string? value)
        {
            foreach (char c in value ?? "") Write(c);
        }

        public override void WriteLine(string? value)
        {
            Write(value);
            Write('\n');
        }
    }
}
