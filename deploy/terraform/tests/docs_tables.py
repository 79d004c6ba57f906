"""Prints the Inputs/Outputs tables of the module READMEs (their "Reference"
section) from the HCL: `.venv/tests/bin/python tests/docs_tables.py gcp-confidential-vm`.
test_readme_documents_every_input_and_output_works fails when a README falls behind."""
from pathlib import Path
import sys
sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import TfDir, MODULES_DIR
def fmt(v):
    if v is None: return "`null`"
    if isinstance(v, bool): return f"`{str(v).lower()}`"
    if isinstance(v, (int, float)): return f"`{v}`"
    if isinstance(v, str): return f'`"{v}"`' if v else '`""`'
    if isinstance(v, dict): return "`{ " + ", ".join(f'{k} = "{x}"' for k, x in v.items()) + " }`"
    return f"`{v}`"
for name in sys.argv[1:]:
    d = TfDir(MODULES_DIR / name)
    print(f"### {name}\n\n#### Inputs\n\n| Name | Description | Type | Default |\n|---|---|---|---|")
    for k, b in d.variables.items():
        t = b["type"].replace("${", "").rstrip("}") if isinstance(b["type"], str) else b["type"]
        t = str(t).replace("\n", " ")
        default = fmt(b["default"]) if "default" in b else "required"
        desc = b["description"].replace("|", "\\|")
        sens = " (sensitive)" if b.get("sensitive") else ""
        print(f"| `{k}` | {desc}{sens} | `{t}` | {default} |")
    print("\n#### Outputs\n\n| Name | Description |\n|---|---|")
    for k, b in d.outputs.items():
        print(f"| `{k}` | {b['description'].replace('|', chr(92)+'|')} |")
    print()
