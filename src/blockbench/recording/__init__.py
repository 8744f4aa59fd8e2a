"""Recording a job: the run folder's files and the tracking store; the only code that writes either."""
