using RlMixup.Core;
using System.CommandLine;
using System.Globalization;
using RlMixup.Core.Cpu;
using RlMixup.Engine.Reports;
using RlMixup.Engine.Training;

namespace RlMixup.Engine.Commands;

/// <summary>
/// `eval --checkpoint FILE`: a trained classifier on a test split: top-1, top-5, the mean clean
/// cross-entropy and the number of images, printed and optionally written as a JSON object.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate a trained classifier on a test split: top-1, top-5 and the mean cross-entropy");
        var checkpoint = new Option<string>("--checkpoint")
        {
            Description = "a model.safetensors, or a run folder holding one; width and classes are read from the tensor shapes",
            Required = true,
        };
        var dataset = new Option<string?>("--dataset") { Description = "cifar100, cifar10 or synthetic (default: the run's, from config.json beside the model; else synthetic)" };
        dataset.AcceptOnlyFromAmong([.. Data.Dataset.Names]);
        var dataDir = new Option<string?>("--data") { Description = "folder holding the dataset (default: the run's data folder; else data)" };
        var maxTest = new Option<int?>("--max-test-images") { Description = "use only the first N test images (default: as many as the run used; else all)" };
        maxTest.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--max-test-images must be at least 1"); });
        var batch = new Option<int>("--batch") { Description = "images per forward pass", DefaultValueFactory = _ => 100 };
        batch.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--batch must be at least 1"); });
        var json = new Option<string?>("--json") { Description = "also write the results as a JSON object to this file (atomically)" };
        var device = TrainCommands.DeviceOption();
        var noTf32 = TrainCommands.NoTf32Option();
        foreach (var o in new Option[] { checkpoint, dataset, dataDir, maxTest, batch, device, noTf32, json }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            using var backend = Backends.Create(r.GetValue(device)!, !r.GetValue(noTf32), Console.Out);
            return Run(backend, r.GetValue(checkpoint)!, r.GetValue(dataset), r.GetValue(dataDir), r.GetValue(maxTest), r.GetValue(batch),
                r.GetValue(json), Console.Out);
        });
        return cmd;
    }

    public static int Run(IBackend backend, string checkpointPath, string? datasetName, string? dataRoot, int? maxTest, int batch, string? jsonPath, TextWriter log)
    {
        var run = RunCheckpoint.Open(checkpointPath, backend);
        var data = run.LoadTestData(datasetName, dataRoot, maxTest);
        if (data.Classes != run.Model.Classes)
            throw new CliException($"--checkpoint {run.ModelPath}: the model has {run.Model.Classes} classes, {data.Name} has {data.Classes}");
        if (data.Test.Count == 0) throw new CliException($"{data.Name}: the test split is empty");
        string epoch = run.Metadata.TryGetValue("epoch", out var e) ? $", epoch {e}" : "";
        log.WriteLine($"checkpoint {run.ModelPath}: PreActResNet18, width {run.Model.Width}, {run.Model.Classes} classes{epoch}");
        log.WriteLine($"{data.Name}: {data.Test.Count} test images ({data.Source}), batches of {batch}, device {backend.Name}");

        var result = Evaluation.Run(backend, run.Model, data.Test, batch);
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"top-1 {100 * result.Top1:F2}% ({result.Correct1}/{result.Images}), top-5 {100 * result.Top5:F2}% ({result.Correct5}/{result.Images}), " +
            $"cross-entropy {result.CrossEntropy:F4}, {result.Images} images"));
        if (jsonPath != null)
        {
            var values = new Dictionary<string, object?>
            {
                ["checkpoint"] = Path.GetFullPath(run.ModelPath), ["width"] = run.Model.Width, ["classes"] = run.Model.Classes,
                ["epoch"] = int.TryParse(e, out int k) ? k : null,
                ["dataset"] = data.Name, ["data_source"] = data.Source, ["images"] = result.Images,
                ["top1"] = result.Top1, ["top5"] = result.Top5, ["cross_entropy"] = result.CrossEntropy,
                ["correct_top1"] = result.Correct1, ["correct_top5"] = result.Correct5,
            };
            try { RunConfig.Write(jsonPath, values); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new CliException($"--json {jsonPath}: cannot write there ({ex.Message})");
            }
            log.WriteLine($"results written to {jsonPath}");
        }
        return 0;
    }
}
