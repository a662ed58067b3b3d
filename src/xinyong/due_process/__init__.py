"""Due process: notices and their delivery, objections, repairs, and the after-append step that
keeps effects, notices and the serving state in step with every append to the ledger."""
