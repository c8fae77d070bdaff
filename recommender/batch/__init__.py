"""Jobs over the whole corpus: building the index, the nightly batch (incremental), the local and Ray engines
(chosen through `engines.get_engine`, which the batch owns), all related lists, and the outputs sites read."""
