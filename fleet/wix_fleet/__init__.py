"""`fleet`: the integrator's read-mostly view of every box, over the Ansible inventory."""
