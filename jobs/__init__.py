"""Built-in job modules. Each is a plain module with `run(ctx)`; see README "Writing a job"."""
