"""Projects: the two projects that exist on first start (`defaults`: Autism DSM-5 with the paper's
labels, rubric and prompts; Hallmarks of Cancer with its bundled data) and turning the Projects
page's tables into labels, facets and rubric dimensions (`setup`).
"""
