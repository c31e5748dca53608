"""Config-driven experiments: `jwinit run --config=configs/<name>.py[:smoke]`.

One module per experiment kind (`signal_propagation`, `phase_diagram`, `isometry`,
`linear_learning`); each exposes ``run(config, workdir) -> dict`` and is importable and tested.
`runner` parses the command line.
"""
