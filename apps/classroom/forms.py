from importlib import import_module

from django import forms

from .models import Assignment, Classroom


def sheet_titles():
    """{slug: title} of the lab sheets found, or None while the sheets module does not exist."""
    try:
        sheets = import_module(f"{__package__}.sheets")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.sheets":
            raise
        return None
    found = sheets.all_sheets()
    found = found.values() if isinstance(found, dict) else found
    return {sheet.slug: getattr(sheet, "title", sheet.slug) for sheet in found}


class JoinForm(forms.Form):
    code = forms.CharField(
        label="Join code",
        max_length=64,
        help_text="The code your instructor shows; case and spaces do not matter.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}),
    )


class ClassForm(forms.ModelForm):
    class Meta:
        model = Classroom
        fields = ["name"]
        labels = {"name": "Class name"}
        help_texts = {"name": "For example “Distributed systems, autumn term”. A join code is made for it."}


class AssignmentForm(forms.ModelForm):
    """An assignment's sheet is picked from the sheets the labs have."""

    class Meta:
        model = Assignment
        fields = ["sheet", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        titles = sheet_titles()
        if titles is not None:
            current = self.initial.get("sheet")
            choices = [(slug, f"{title} ({slug})") for slug, title in sorted(titles.items())]
            if current and current not in titles:
                choices.append((current, f"{current} (no such sheet any more)"))
            self.fields["sheet"] = forms.ChoiceField(choices=[("", "---------"), *choices])

    def clean_sheet(self):
        sheet = self.cleaned_data["sheet"].strip()
        titles = sheet_titles()
        if titles is not None and sheet not in titles:
            raise forms.ValidationError(f"no lab has a sheet {sheet!r}")
        if titles is None and sheet.count("/") != 1:
            raise forms.ValidationError("a sheet is named <lab>/<file name without .md>")
        return sheet
