package sr2fhir;

import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.hl7.fhir.r4.formats.IParser.OutputStyle;
import org.hl7.fhir.r4.formats.JsonParser;
import org.hl7.fhir.r4.formats.XmlParser;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.Resource;

/**
 * Writes FHIR R4's definitions as the FHIR package hl7.fhir.r4.core#4.0.1 (one JSON file per
 * resource and a package.json), from the Bundles that Maven Central's
 * ca.uhn.hapi.fhir:hapi-fhir-validation-resources-r4 carries. The npm registry, where the other
 * packages come from, no longer carries hl7.fhir.r4.core.
 *
 * <p>Usage: {@code R4CorePackage PACKAGE_DIR} (the folder that gets package.json).
 */
public class R4CorePackage {
  private static final List<String> BUNDLES = List.of(
      "profile/profiles-types.xml", "profile/profiles-resources.xml", "profile/profiles-others.xml",
      "extension/extension-definitions.xml", "valueset/valuesets.xml", "valueset/v2-tables.xml",
      "valueset/v3-codesystems.xml", "sp/search-parameters.json");

  public static void main(String[] args) throws Exception {
    Path out = Path.of(args[0]);
    Files.createDirectories(out);
    JsonParser json = new JsonParser();
    json.setOutputStyle(OutputStyle.NORMAL);
    int written = 0;
    for (String name : BUNDLES) {
      try (InputStream in = R4CorePackage.class.getResourceAsStream("/org/hl7/fhir/r4/model/" + name)) {
        if (in == null) {
          throw new IllegalStateException("not on the classpath: " + name);
        }
        Bundle b = (Bundle) (name.endsWith(".json") ? new JsonParser().parse(in) : new XmlParser().parse(in));
        for (Bundle.BundleEntryComponent e : b.getEntry()) {
          Resource r = e.getResource();
          if (r == null || !r.hasIdElement() || r.getIdElement().getIdPart() == null) {
            continue;
          }
          String file = r.fhirType() + "-" + r.getIdElement().getIdPart() + ".json";
          try (OutputStream o = Files.newOutputStream(out.resolve(file))) {
            json.compose(o, r);
          }
          written++;
        }
      }
    }
    Files.writeString(out.resolve("package.json"), "{\n  \"name\": \"hl7.fhir.r4.core\",\n  \"version\": \"4.0.1\",\n"
        + "  \"type\": \"Core\",\n  \"fhirVersions\": [\"4.0.1\"],\n  \"canonical\": \"http://hl7.org/fhir\",\n"
        + "  \"url\": \"http://hl7.org/fhir/R4\",\n  \"license\": \"CC0-1.0\",\n  \"dependencies\": {}\n}\n");
    System.err.println("hl7.fhir.r4.core#4.0.1: " + written + " resources written to " + out);
  }
}
