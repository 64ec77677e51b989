"""The distributed cache lab's engines, plain Python: they import the engine API and nothing else of
the project. store (the items table and the cache's keys), clients (cache-aside readers and writers,
step by step so a scenario can schedule a race), workload (Zipf-distributed keys), events (what the
page draws), and one module per pattern."""
