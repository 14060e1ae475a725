"""The local ClassPulse stack: installs and runs Kafka, Redis and its exporter, Prometheus, the model server and the
five services.

`python -m classpulse_devstack {install,up,down,status}`; the components are listed once, in `components.py`.
"""
