"""Renders the OPNsense plugin's rc.conf.d template (argv[1]) for sample
instances (JSON, argv[2]: a list of field dicts with '@uuid'), as configd
does: Jinja2 with a `helpers.toList` over the config tree."""
import json
import sys

import jinja2


class Helpers:
    def __init__(self, tree):
        self.tree = tree

    def toList(self, path):
        v = self.tree
        for k in path.split("."):
            v = v.get(k, {}) if isinstance(v, dict) else {}
        return v if isinstance(v, list) else ([v] if v else [])


with open(sys.argv[2]) as f:
    instances = json.load(f)
tree = {"OPNsense": {"ftpproxyrs": {"instances": {"instance": instances}}}}
with open(sys.argv[1]) as f:
    template = jinja2.Environment(trim_blocks=True).from_string(f.read())
print(template.render(helpers=Helpers(tree)))
