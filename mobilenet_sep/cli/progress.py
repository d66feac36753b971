"""Progress on the terminal: the training engine's bars and the demo's stage lines and spinner."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """The engine's progress reports as a rich progress bar per epoch and one line per finished epoch."""

    def __init__(self, console):
        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = None

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc_info):
        self.bar.stop()

    def start(self, plan):
        self.plan = plan
        self.console.print(
            f"[bold]{plan['model']}[/] ({plan['parameters']:,} parameters): {plan['train_examples']:,} training, "
            f"{plan['test_examples']:,} test examples; {plan['epochs']} epochs of {plan['steps_per_epoch']} steps "
            f"x {plan['batch_size']} on {plan['replicas']} replica(s) -> {plan['output_dir']}"
        )
        if plan["initial_epoch"]:
            self.console.print(f"resuming after epoch {plan['initial_epoch']} (the last checkpoint)")

    def notice(self, message):
        self.console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)

    def step(self, epoch, step, loss):
        if step == 0:
            description = f"epoch {epoch + 1}/{self.plan['epochs']}"
            self.task = self.bar.add_task(description, total=self.plan["steps_per_epoch"], loss=loss)
        self.bar.update(self.task, advance=1, loss=loss)

    def epoch_end(self, record):
        self.bar.remove_task(self.task)
        top5 = f"  top-5 {record['test_top5']:6.2%}" if "test_top5" in record else ""
        frozen = "  (base frozen)" if record["frozen_base"] else ""
        self.console.print(
            f"epoch {record['epoch']:>3}/{self.plan['epochs']}  loss {record['loss']:.4f}  train top-1 "
            f"{record['top1']:6.2%}  |  test loss {record['test_loss']:.4f}  top-1 {record['test_top1']:6.2%}{top5}"
            f"  |  {record['images_per_second']:,.0f} img/s  {record['wall_seconds']:.1f} s{frozen}"
        )


class _DemoTraining(TrainProgress):
    """The train command's bars inside the demo, started when the engine starts (after the spinner stops)."""

    def __init__(self, console, before):
        super().__init__(console)
        self.before = before

    def start(self, plan):
        self.before()
        self.bar.start()
        super().start(plan)

    def stop(self):
        if self.bar.live.is_started:  # rich prints an empty line when a bar that never started stops
            self.bar.stop()


class DemoConsoleProgress:
    """A line per demo step, a spinner within it on a terminal, and the engine's bars: one live display at a time."""

    def __init__(self, console):
        self.console = console
        self.status = console.status("") if console.is_terminal else None
        self.training = _DemoTraining(console, before=self._stop_status)

    def _stop_status(self):
        if self.status is not None:
            self.status.stop()

    def stage(self, message):
        self.training.stop()
        self.console.print(f"[bold cyan]>[/] {message}")
        if self.status is not None:
            self.status.update(message)
            self.status.start()

    def detail(self, message):
        if self.status is not None:
            self.status.update(message)

    def close(self):
        self._stop_status()
        self.training.stop()
