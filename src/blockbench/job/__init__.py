"""One job: plan (validate, no work) -> execute (build and measure, in a worker process) -> record (the store)."""
