"""Everything that knows faust-streaming's and aiokafka's internals, and nothing else does."""
