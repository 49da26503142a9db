"""The shape of the code: the import graph of agent/, checks/, alerting/ and core/ has no
cycle and no upward edge.
"""
